"""Run an ASGI app on a real local HTTP port, in a background thread or in the foreground.

Tests, the demo and benchmarks all talk to the simulators over real HTTP; this is the one place that
knows how to start and stop such a server.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn

__all__ = ["ServerThread", "free_port", "serve_forever"]


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # The simulators send the real systems' Server header; uvicorn's own would be a second one.
        server_header=False,
        # Many concurrent keep-alive connections from loaders and benchmarks.
        backlog=2048,
        timeout_keep_alive=30,
        # Injected timeout faults can hold a request for minutes; do not let them hold a shutdown.
        timeout_graceful_shutdown=2,
    )


class ServerThread:
    """An ASGI app served by uvicorn on ``127.0.0.1:<port>`` in a daemon thread.

    Use as a context manager; ``url`` is the base URL once started.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.server = uvicorn.Server(_config(app, host, self.port))
        self._thread = threading.Thread(target=self.server.run, name=f"sim-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(app: Any, host: str, port: int, on_started: Callable[[], None] | None = None) -> None:
    """Serve ``app`` in the foreground until SIGINT/SIGTERM (used by ``ml-connector sim ...``)."""
    server = uvicorn.Server(_config(app, host, port))
    if on_started is not None:
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets=sockets)
            on_started()

        server.startup = startup  # type: ignore[method-assign]
    asyncio.run(server.serve())
