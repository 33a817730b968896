"""Serve an ASGI application over loopback in a background thread.

Simulators, tests, benchmarks and ``bridge simulate`` all run their HTTP simulators
through :func:`serve`, so they share one way to pick a free port, wait until the server
listens, and shut it down cleanly::

    with serve(app) as base_url:          # e.g. "http://127.0.0.1:53187"
        httpx.get(f"{base_url}/health")

Port 0 (the default) lets the operating system choose a free port, so concurrent test
runs never collide.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

STARTUP_TIMEOUT = 10.0
"""Seconds to wait for the server to listen before giving up."""


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """Serve HTTPS instead of HTTP; with ``client_ca`` set, require a client certificate."""

    certfile: Path
    keyfile: Path
    client_ca: Path | None = None


class _Server(uvicorn.Server):
    """A uvicorn server that records why it stopped, so a failed start is reported."""

    failure: BaseException | None = None

    def run_in_thread(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # uvicorn ends a failed bind with SystemExit
            self.failure = exc


@contextmanager
def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: ServerTLS | None = None,
    log_level: str = "warning",
) -> Iterator[str]:
    """Run ``app`` with uvicorn in a daemon thread; yield its base URL (no trailing slash).

    The server stops when the ``with`` block ends, also on error; open client
    connections are closed. Raises ``OSError`` if the server cannot listen (port taken).
    """
    options: dict[str, Any] = {}
    if tls is not None:
        options = {"ssl_certfile": str(tls.certfile), "ssl_keyfile": str(tls.keyfile)}
        if tls.client_ca is not None:
            options |= {"ssl_ca_certs": str(tls.client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_config=None,
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=2,
        **options,
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run_in_thread, name=f"uvicorn-{host}:{port}", daemon=True)
    thread.start()
    try:
        bound_port = _wait_until_listening(server, thread)
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)


def _wait_until_listening(server: _Server, thread: threading.Thread) -> int:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive():
            where = f"{server.config.host}:{server.config.port}"
            raise OSError(f"the server could not listen on {where} ({server.failure!r})")
        if time.monotonic() > deadline:
            raise OSError(f"the simulator server did not start within {STARTUP_TIMEOUT:.0f} s")
        time.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return port
