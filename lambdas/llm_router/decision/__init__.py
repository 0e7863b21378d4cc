"""The routing decision: classifiers, normalisation, conversations, the semantic index and head."""
