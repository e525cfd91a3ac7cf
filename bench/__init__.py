"""Benchmarks: the GraphQL read path against a hand-written endpoint on the same database."""
