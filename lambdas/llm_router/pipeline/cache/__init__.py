"""The response cache: exact and semantic hits, scoped, versioned, stale answers in an outage.

``keys`` (what a hit must match), ``guard`` (the facts a semantic hit must share), ``store``
(DynamoDB) and ``response_cache`` (the lookups and writes the core calls).
"""
