"""Classifiers, one module per routing strategy."""
