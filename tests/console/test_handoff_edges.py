"""Edges of tests/console/test_handoff_edges.py that the mutation run (issue 18) showed no test noticed."""
