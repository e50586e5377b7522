"""Benchmarks for pulumi-tdx: they print figures and write ``bench/results/<date>.json``.

Not timed tests: nothing here asserts on a number. Run with ``make bench`` (see
``docs/performance.md``).
"""
