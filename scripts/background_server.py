"""An HTTP server on a background thread: what the local API and the Bedrock stand-in share.

Both are stdlib ``ThreadingHTTPServer``s (no web framework: they serve a handful of JSON routes and
must start in-process inside tests), tuned the same way:

* a listen backlog of 128, since socketserver's default of 5 makes the kernel reset a burst of
  simultaneous clients before they are answered;
* clients that hang up are not errors worth a traceback;
* request threads are daemons, so a stuck client cannot keep the process alive at shutdown.

Handlers should set ``disable_nagle_algorithm = True``: with HTTP/1.1 keep-alive, the headers and
the body go out as two writes, and Nagle's algorithm with the client's delayed ACK holds the second
for ~40 ms (measured: 44 ms a round trip with it, a few ms without).
"""

from __future__ import annotations

import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any


class QuietThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away; nothing to answer
        super().handle_error(request, client_address)


class BackgroundServer:
    """Runs ``server`` on a daemon thread; a context manager that stops it and frees the port."""

    def __init__(self, server: ThreadingHTTPServer, name: str) -> None:
        self._server = server
        self._name = name
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Any:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how soon stop() takes effect
            name=self._name,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
