"""Benchmarks of the running platform (``make bench``); measurements, not tests.

See ``bench/README.md`` for what each one measures and how to read it.
"""
