"""An ASGI app served on 127.0.0.1 from a thread of its own, for tests and benchmarks that
need a real HTTP server: fake remote sites, or trackd itself for a client over the network.

    with LocalServer(app) as server:
        httpx.get(f"{server.url}/health")
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn


class LocalServer:
    """Serves `app` with uvicorn on a free port of 127.0.0.1 until the block ends.

    Args:
        app: any ASGI application.
        lifespan: "on" to run the app's start-up and shut-down (trackd's own app), "off" for
            fakes that have none.
        start_timeout: seconds to wait for the server to listen.
    """

    def __init__(
        self, app: Any, *, lifespan: Literal["on", "off"] = "off", start_timeout: float = 20.0
    ) -> None:
        self._config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan=lifespan,
            timeout_graceful_shutdown=1,
        )
        self._start_timeout = start_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def __enter__(self) -> LocalServer:
        server = self._server = uvicorn.Server(self._config)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Inherited by every accepted connection: without it a body written after its
        # headers waits for the client's delayed ACK (40 ms a request, Nagle's algorithm).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        thread = self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="trackd-local-server", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + self._start_timeout
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                self.__exit__(None, None, None)
                raise RuntimeError(f"the local server did not start within {self._start_timeout} s")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)


class ServedFake:
    """A fake remote site that serves its own `asgi_app()` on 127.0.0.1 for a `with` block;
    `url` is where it listens while the block runs."""

    def __init__(self) -> None:
        self._server: LocalServer | None = None
        self.url = ""

    def asgi_app(self) -> Any:
        """The ASGI application this fake answers with."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._server = LocalServer(self.asgi_app()).__enter__()
        self.url = self._server.url
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.__exit__(exc_type, exc, tb)
