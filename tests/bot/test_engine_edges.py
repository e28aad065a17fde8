"""Edges of tests/bot/test_engine_edges.py that the mutation run (issue 18) showed no test noticed."""
