"""Run the twin: bind both ports, serve until SIGTERM/SIGINT, stop within a bounded time.

    >>> asyncio.run(serve(TwinConfig.from_env(api_port=0, yjs_port=0)))

Start-up order: storage and rate limiter first (a bad DATABASE_URL fails before any port is
bound), then both listening sockets (a port in use fails as one line), then the ready file
and the ready line on stdout. Shutdown closes every WebSocket (so Yjs documents are flushed
to storage), then the HTTP runners, then storage, all inside `shutdown_timeout_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import time

from aiohttp import web

from codesync_load.errors import HarnessError
from twin.config import TwinConfig
from twin.context import ProcessContext
from twin.metrics import TwinMetrics

log = logging.getLogger("twin")


def bind_socket(host: str, port: int, what: str, option: str) -> socket.socket:
    """A listening TCP socket, or a HarnessError naming the port and the fix."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise HarnessError(
                f"{what} port {port} on {host} is in use; stop what listens there or pass {option} 0 for a free port"
            ) from None
        raise HarnessError(f"cannot bind {what} to {host}:{port} ({err.strerror}); pass another {option}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class TwinServer:
    """Both CodeSync processes in one event loop, started and stopped as one."""

    def __init__(self, config: TwinConfig) -> None:
        self.config = config
        self.api: ProcessContext | None = None
        self.yjs: ProcessContext | None = None
        self._runners: list[web.AppRunner] = []
        self._sockets: list[socket.socket] = []
        self.api_port = 0
        self.yjs_port = 0

    async def start(self) -> None:
        from twin.api.app import build_api_app
        from twin.ratelimit import open_limiter
        from twin.realtime import attach_socketio
        from twin.sentry import init_sentry
        from twin.storage import open_store
        from twin.yjs.server import build_yjs_app

        init_sentry(self.config)
        api_metrics = TwinMetrics("api", self.config.faults)
        yjs_metrics = TwinMetrics("yjs", self.config.faults)
        limiter = await open_limiter(self.config)
        api_store = await open_store(self.config, api_metrics)
        yjs_store = await open_store(self.config, yjs_metrics)
        self.api = ProcessContext(self.config, api_metrics, api_store, limiter)
        self.yjs = ProcessContext(self.config, yjs_metrics, yjs_store, limiter)

        api_sock = bind_socket(self.config.host, self.config.api_port, "API", "--api-port")
        self._sockets.append(api_sock)
        yjs_sock = bind_socket(self.config.host, self.config.yjs_port, "Yjs", "--yjs-port")
        self._sockets.append(yjs_sock)
        self.api_port = api_sock.getsockname()[1]
        self.yjs_port = yjs_sock.getsockname()[1]

        api_app = build_api_app(self.api)
        attach_socketio(api_app, self.api)
        yjs_app = build_yjs_app(self.yjs)
        grace = max(0.5, self.config.shutdown_timeout_s / 2)
        for app, sock in ((api_app, api_sock), (yjs_app, yjs_sock)):
            runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=grace)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            self._runners.append(runner)

    def ready_record(self) -> dict[str, object]:
        host = self.config.host
        return {
            "pid": os.getpid(),
            "api_url": f"http://{host}:{self.api_port}",
            "yjs_url": f"ws://{host}:{self.yjs_port}",
            "api_port": self.api_port,
            "yjs_port": self.yjs_port,
            "faults": self.config.faults.names(),
            "storage": "postgresql" if self.config.database_url else f"sqlite:{self.config.sqlite_path}",
            "state": "redis" if self.config.redis_url else "in-process",
        }

    async def stop(self) -> None:
        """Close everything; each stage bounded so the whole stays inside the timeout."""
        deadline = time.monotonic() + self.config.shutdown_timeout_s - 0.3

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        for runner in reversed(self._runners):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runner.cleanup(), timeout=left())
        for ctx in (self.yjs, self.api):
            if ctx is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ctx.store.close(), timeout=left())
        if self.api is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.api.limiter.close(), timeout=left())
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()


async def serve(config: TwinConfig) -> None:
    """Serve until SIGTERM or SIGINT, then stop within `config.shutdown_timeout_s`."""
    server = TwinServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        record = server.ready_record()
        if config.ready_file:
            tmp = config.ready_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(record))
            tmp.replace(config.ready_file)
        print(f"twin ready: api {record['api_url']} yjs {record['yjs_url']} pid {record['pid']}", flush=True)
        await stop.wait()
    finally:
        await server.stop()
        if config.ready_file:
            with contextlib.suppress(FileNotFoundError):
                config.ready_file.unlink()
