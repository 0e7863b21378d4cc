"""Governance: the budget guard, prices and the audit record."""
