"""Observability: stage tracing, the metric catalogue and the per-request telemetry."""
