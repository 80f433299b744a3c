"""The demo website of ``orchestrator demo``: a page that plays one visitor and shows what the
engine sends them, with the latency measured.

The page (``orchestrator/web/demo.html``) posts each click to ``POST /api/events``, which turns it
into a contract ``clickstream`` record and produces it to Kafka; the demo's reader of the action
topics hands every action for a visitor with the page open to that page's
``GET /api/actions?visitor=...`` server-sent event stream, with the event-to-action latency as
the demo prints it (trigger record's Kafka timestamp -> action read back from Kafka). The page
adds the time from the click to the action on screen. The site listens on loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer

from orchestrator.runtime.console import KEEPALIVE_S, asset_response, sse_event
from orchestrator.runtime.settings import Settings

VISITOR_ID = re.compile(r"v-demo-[0-9a-f]{8,32}")
#: The demo site's pages: url -> page category (None: not a topic of the rules).
PAGES: dict[str, str | None] = {
    "/": None, "/offers": "offers", "/billing": "billing", "/billing/invoices": "invoices",
    "/moving": "moving", "/contract": "contract", "/guides/broadband": "broadband",
}


class BadClick(ValueError):
    """A click the site does not know how to send; the message says why."""


def click_record(click: Any, now_ms: int) -> dict[str, Any]:
    """The ``clickstream`` record of a click of the demo page: a ``page_view`` of one of
    :data:`PAGES`, or a ``login`` (the visitor's customer id is ``c-demo-<visitor's hex>``).

    >>> click_record({"visitor_id": "v-demo-0123abcd", "type": "page_view", "url": "/billing"}, 5)["page"]
    {'url': '/billing', 'category': 'billing'}
    """
    if not isinstance(click, dict):
        raise BadClick("a click is a JSON object")
    visitor = click.get("visitor_id")
    if not isinstance(visitor, str) or not VISITOR_ID.fullmatch(visitor):
        raise BadClick("visitor_id must look like v-demo-<8 to 32 hex digits>")
    kind = click.get("type")
    customer = "c-demo-" + visitor.removeprefix("v-demo-")
    record: dict[str, Any] = {"event_id": f"demo-{uuid.uuid4().hex}", "ts": now_ms,
                              "visitor_id": visitor, "session_id": f"s-{visitor}"}
    if click.get("logged_in") is True:
        record["customer_id"] = customer
    if kind == "login":
        return record | {"type": "login", "customer_id": customer}
    if kind != "page_view":
        raise BadClick("type must be page_view or login")
    url = click.get("url")
    if url not in PAGES:
        raise BadClick(f"url must be one of {', '.join(PAGES)}")
    category = PAGES[url]
    return record | {"type": "page_view",
                     "page": {"url": url} | ({"category": category} if category else {})}


class DemoSite:
    """The page, its click endpoint and its action streams, on ``127.0.0.1:port``."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"
        self._listeners: dict[str, set[asyncio.Queue[bytes]]] = {}
        self._producer: AIOKafkaProducer | None = None  # made in start(), inside the event loop
        app = web.Application(client_max_size=4096)
        app.router.add_get("/", self._asset)
        app.router.add_get("/{name:[a-z]+\\.(?:js|css)}", self._asset)
        app.router.add_post("/api/events", self._click)
        app.router.add_get("/api/actions", self._actions)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers,
                                          acks="all", linger_ms=0)
        await self._producer.start()
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        except OSError as exc:
            raise RuntimeError(f"the demo website cannot listen on 127.0.0.1:{self.port} "
                               f"({exc.strerror}); choose another port with --page-port") from None

    async def stop(self) -> None:
        await self._runner.cleanup()
        if self._producer is not None:
            await self._producer.stop()

    def action(self, value: dict[str, Any], latency_ms: float) -> None:
        """An action read from Kafka: pass it to the pages of its visitor (if any is open)."""
        listeners = self._listeners.get(value.get("visitor_id") or "")
        if listeners:
            event = sse_event("action", orjson.dumps(value | {"latency_ms": round(latency_ms, 1)}))
            for queue in listeners:
                with contextlib.suppress(asyncio.QueueFull):  # a page that stopped reading
                    queue.put_nowait(event)

    async def _asset(self, request: web.Request) -> web.Response:
        try:
            return asset_response(request.match_info.get("name", "demo.html"))
        except KeyError:
            raise web.HTTPNotFound() from None

    async def _click(self, request: web.Request) -> web.Response:
        try:
            record = click_record(orjson.loads(await request.read()), time.time_ns() // 1_000_000)
        except (orjson.JSONDecodeError, BadClick) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        assert self._producer is not None, "the site is started"
        sent = await self._producer.send_and_wait(
            self.settings.topic_clickstream, orjson.dumps(record), key=record["visitor_id"].encode())
        return web.json_response({"event_id": record["event_id"], "kafka_ts": sent.timestamp})

    async def _actions(self, request: web.Request) -> web.StreamResponse:
        visitor = request.query.get("visitor", "")
        if not VISITOR_ID.fullmatch(visitor):
            raise web.HTTPBadRequest(text="visitor must look like v-demo-<8 to 32 hex digits>")
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=100)
        self._listeners.setdefault(visitor, set()).add(queue)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        try:
            await response.prepare(request)
            await response.write(b": connected\n\n")
            while request.transport is not None and not request.transport.is_closing():
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    event = b": keep-alive\n\n"
                await response.write(event)
        except (ConnectionError, RuntimeError):
            pass  # the page was closed
        finally:
            listeners = self._listeners[visitor]
            listeners.discard(queue)
            if not listeners:
                del self._listeners[visitor]
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write_eof()
        return response
