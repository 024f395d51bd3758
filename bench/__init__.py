"""Benchmark scripts; a package so mypy does not confuse bench/protocol.py with protocol/."""
