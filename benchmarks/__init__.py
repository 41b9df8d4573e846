"""Benchmark harness of the performance issue: realistic reads, measured limits, the machine they ran on.

Nothing here is part of the test suite and no test is timed. ``benchmarks.generate`` makes the load,
``benchmarks.limits`` measures one stage at a time, ``benchmarks.machine`` describes where it ran and
``benchmarks.infra`` holds the Kafka, PostgreSQL and process plumbing they share.
"""
