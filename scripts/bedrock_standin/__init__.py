"""An offline stand-in for Amazon Bedrock Runtime that speaks its wire protocol on loopback.

See :mod:`bedrock_standin.server`. Embeddings are real (all-MiniLM-L6-v2 run with numpy, mapped
into Titan V2's dimensions); text models classify zero-shot or return labelled placeholders.
"""

from .server import StandInServer

__all__ = ["StandInServer"]
