"""Benchmarks that ``scripts/benchmark.py`` runs besides its scale benchmark (``--cold``)."""
