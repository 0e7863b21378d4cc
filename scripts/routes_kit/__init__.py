"""Tools for a user's own routes file, behind ``scripts/routes.py``.

- ``skeleton``: a new routes file for given categories, its operational sections (models,
  prices, limits) taken from a template, everything domain-specific left as a marked placeholder.
- ``checks``: what the router's own parsers reject, plus what they accept but routes badly:
  placeholders left in, too few prompts, a prompt under two labels, an unknown schema version.
- ``conflicts``: the reference prompts' embeddings (the semantic index the router would use):
  prompts of one category closer to another, off-topic prompts inside a category.

Hand-written because no library knows this file's format or the router's decision; the checks
reuse the routing core's parsers and the index build, so they cannot disagree with the function.
"""

from .checks import ERROR, WARNING, Problem, structural_problems
from .conflicts import conflict_problems, off_topic_inside
from .skeleton import PLACEHOLDER, skeleton

__all__ = [
    "ERROR",
    "PLACEHOLDER",
    "WARNING",
    "Problem",
    "conflict_problems",
    "off_topic_inside",
    "skeleton",
    "structural_problems",
]
