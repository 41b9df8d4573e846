"""Fuzz targets for every connector parser: bad bytes must become a refusal naming why, never a crash.

``targets.py`` holds one target per parser (the chain its HTTP route or command runs, seed samples and a
hypothesis strategy of structured and byte-mutated inputs); ``python -m tests.fuzz`` runs them at
100,000 inputs each, outside the test suite; ``tests/connectors/test_fuzz.py`` runs a few hundred each.
"""
