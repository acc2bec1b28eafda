"""The HTTP gateway of the tests: ``joynet.gateway``'s application served by aiohttp on a free
local port, from an event loop of its own in a background thread (as ``joynet gateway`` serves
it), so that a blocking client (the ``openai`` SDK) calls it from the test's thread."""

import asyncio
import socket
import threading

from aiohttp import web


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GatewayServer:
    """Serves ``app`` on 127.0.0.1 until ``stop``; ``url`` is its OpenAI base URL (``.../v1``)."""

    def __init__(self, app: web.Application):
        self.app = app
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.root}/v1"
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app)
        self._thread = threading.Thread(target=self._loop.run_forever, name="gateway", daemon=True)

    def start(self) -> "GatewayServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=30)
        return self

    async def _serve(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def call(self, coroutine, timeout: float = 120):
        """Runs ``coroutine`` on the gateway's loop (as its handlers would) and returns its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=timeout)

    def stop(self) -> None:
        self.call(self._runner.cleanup(), timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()

    def __enter__(self) -> "GatewayServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
