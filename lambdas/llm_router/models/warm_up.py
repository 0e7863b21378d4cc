"""Creating an AWS client on a background thread while a cold start does the rest.

Why: botocore loading a service model (DynamoDB's) costs ~100 ms. The budget guard and the
response cache both start that work at cold start and let a request wait for it only briefly;
this is the one place that runs it and answers "is it done yet", so both wait and give up alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..records import record


@record(frozen=True)
class SharedClient:
    """Another component's client (the budget guard's DynamoDB client, made by its warm-up):
    ``client`` gives it, ``ready(wait)`` says whether its warm-up is done. One client for the
    function's tables costs one service-model load and one connection pool (in AWS, one TLS
    handshake); the response cache and the conversation store use the guard's."""

    client: Callable[[], Any]
    ready: Callable[[float], bool]


class WarmUp:
    """One background creation: :meth:`start` it, then ask :meth:`ready` before using the client."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._created = threading.Event()

    def start(
        self,
        create: Callable[[], object],
        name: str,
        failed: Callable[[Exception], None],
        then: Callable[[], object] | None = None,
    ) -> None:
        """Run ``create`` on a daemon thread called ``name``, then ``then`` (a first call worth
        making before any request, which :meth:`ready` does not wait for); an exception goes to
        ``failed`` (the caller's first real call creates the client again, and logs what goes
        wrong then)."""

        def run() -> None:
            try:
                create()
            except Exception as exc:  # noqa: BLE001 - the first call retries and logs it
                failed(exc)
                return
            finally:
                self._created.set()
            if then is not None:
                try:
                    then()
                except Exception as exc:  # noqa: BLE001 - the request path does without it
                    failed(exc)

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def ready(self, wait: float) -> bool:
        """Whether the client may be used now, waiting up to ``wait`` s for its creation."""
        return self._thread is None or self._created.wait(wait)
