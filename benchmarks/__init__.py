"""Benchmarks: run with one command each; they print figures, tests never time anything."""
