"""Leaf primitives every layer may use and that import nothing else of ours: the platform clock and I/O helpers.

They live here, not in a domain layer, so that storage, feeds, incidents and the pipeline share one
definition of "now" and one way to write a file safely.
"""
