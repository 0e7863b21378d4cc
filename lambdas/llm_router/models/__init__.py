"""Model calls: the Bedrock client, the resilient client and its breaker, the answer stage."""
