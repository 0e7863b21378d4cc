"""The HTTP edge: the Lambda handlers, the request and response contract, the init phase."""

# The functions' entry points, as the stacks configure them and the local run finds them.
ROUTER_ENTRY_POINT = "llm_router.edge.handler.lambda_handler"
FEEDBACK_ENTRY_POINT = "llm_router.edge.feedback.lambda_handler"
# The streaming function's: Lambda never calls it (its exec wrapper runs the module), but it names
# the entry and tells llm_router.edge.handler that the function is not the buffered router.
STREAM_ENTRY_POINT = "llm_router.edge.stream_runtime.main"

# The API's resources: as the stacks deploy them, the local API serves them (under /<router>)
# and scripts/openapi.py describes them.
ASK_RESOURCE = "/ask"
STREAM_RESOURCE = "/ask/stream"
FEEDBACK_RESOURCE = "/feedback"
