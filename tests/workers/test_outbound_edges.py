"""Edges of tests/workers/test_outbound_edges.py that the mutation run (issue 18) showed no test noticed."""
