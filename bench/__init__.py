"""Benchmarks that print figures (never timed assertions). bench.env is the bottom (paths,
secrets, logs); common and server build on it.

May import: shared, functions and local. Nothing deployed imports this package.
"""
