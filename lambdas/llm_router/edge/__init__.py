"""The HTTP edge: the Lambda handlers, the request and response contract, the init phase."""
