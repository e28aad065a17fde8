"""Mutation testing of the safety-critical modules (`make mutate`, issue 18); see __main__.py."""
