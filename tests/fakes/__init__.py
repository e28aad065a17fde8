"""Local servers that answer like the outside services the help line talks to."""
