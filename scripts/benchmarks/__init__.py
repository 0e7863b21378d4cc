"""What ``scripts/benchmark.py`` measures, one concern a module.

The scale benchmark: ``synthetic`` (clustered vectors, queries, routes), ``index_cache`` (build or
reuse the index per size), ``scale_cold`` (the init phase split), ``overhead`` (per-request time
through the handler), ``recall`` (against exact search), ``machine``, ``scale`` (the run) and
``scale_report`` (the text table). ``--cold``: ``cold_start`` (each router beside the original
sample's floor) with ``cold_probe`` (one fresh process). ``fresh_process`` runs a probe in a fresh
interpreter and reads its figures, for both.
"""
