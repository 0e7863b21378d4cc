"""Routing evaluation: metrics and threshold fitting for scripts/evaluate.py."""
