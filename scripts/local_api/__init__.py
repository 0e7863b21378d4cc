"""A local stand-in for the deployed API Gateway REST API, serving the real Lambda handlers.

``python scripts/local.py`` mounts one ``POST /<router>/ask`` per entry of
``llm_router.pipeline.strategies.STRATEGIES`` and answers the way the deployed API does: the same
API key
check, usage-plan throttling, request model, payload limit and error bodies, all read from the
``routes.json`` the stacks are built from. Requests become API Gateway proxy events (payload 1.0)
and the handlers' proxy results become HTTP responses, so the code under test is the code deployed.

Hand-written on the standard library (``http.server``): no maintained library emulates API Gateway
REST APIs without Docker (SAM CLI's ``start-api`` runs the functions in containers and enforces
neither API keys nor usage plans; LocalStack needs Docker as well).

Modules, one concern each: :mod:`.messages` (HTTP request/response values and API Gateway's error
responses), :mod:`.request_model` (the request body schema), :mod:`.throttle` (usage plan rate,
burst and quota), :mod:`.proxy` (proxy event in, proxy result out), :mod:`.gateway` (the request
pipeline), :mod:`.server` (the threaded HTTP server), :mod:`.routers` (the Lambda handler of each
strategy), :mod:`.examples` (the curl lines the README shows).
"""

from __future__ import annotations

from .gateway import ApiSettings, LambdaHandler, LocalGateway
from .messages import HttpRequest, HttpResponse
from .server import LocalApiServer

__all__ = [
    "ApiSettings",
    "HttpRequest",
    "HttpResponse",
    "LambdaHandler",
    "LocalApiServer",
    "LocalGateway",
]
