"""The agent console: ``GET /console`` (static page) and ``GET /context/{id}/events`` (live context).

The page is plain HTML, CSS and JavaScript shipped in ``orchestrator/web/`` and served from
memory; it holds no personal data, so it is open like ``/health``. Everything personal comes
from ``/context/{id}`` and ``/context/{id}/events``, which need a ``context-reader`` or
``operator`` token (the page sends it in the ``Authorization`` header through ``fetch``; a
browser's ``EventSource`` cannot, and a token in the URL would end up in logs and history).

``/context/{id}/events`` is a server-sent event stream: an ``event: context`` with the context
record (exactly what ``/context/{id}`` answers) whenever it changes, or an ``event: status``
(``{"status": 404, "error": ...}``) when the id is unknown, erased or unreachable. The stream
re-reads the context through the same look-up as ``/context/{id}`` (so it follows the person to
whichever worker owns them, and a visitor who logs in to their customer) when this worker's
:class:`ContextPublisher` publishes that person, and at least every ``POLL_S`` otherwise: a
person owned by another worker is polled through one signed request a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib import resources
from typing import Any

import faust
import orjson
from aiohttp import web
from faust.web import Request, View

from orchestrator.core.access import Scope
from orchestrator.runtime.context_feed import ContextPublisher
from orchestrator.runtime.context_view import ContextLookup
from orchestrator.runtime.metrics import EngineMetrics
from orchestrator.runtime.web_guard import refusal
from orchestrator.runtime.web_security import WebSecurity

#: Longest wait between two reads of a streamed context (a person owned by another worker, or
#: an id that is not known yet).
POLL_S = 1.0
#: A comment line this often keeps proxies from closing a quiet stream and finds gone clients.
KEEPALIVE_S = 15.0
#: Open streams a worker serves at once; more are refused with a 503 (each costs a read a second).
MAX_STREAMS = 200

_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
#: The pages load nothing but their own files and talk only to the worker that served them.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def web_asset(name: str) -> tuple[bytes, str]:
    """The bytes and content type of ``orchestrator/web/<name>``; KeyError when there is none."""
    suffix = name[name.rfind("."):] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in _TYPES:
        raise KeyError(name)
    asset = resources.files("orchestrator.web").joinpath(name)
    if not asset.is_file():
        raise KeyError(name)
    return asset.read_bytes(), _TYPES[suffix]


def asset_response(name: str) -> web.Response:
    """``orchestrator/web/<name>`` as an answer with the pages' security headers; KeyError."""
    body, content_type = web_asset(name)
    charset = None if content_type.startswith("image/") else "utf-8"
    return web.Response(body=body, content_type=content_type, charset=charset, headers=PAGE_HEADERS)


def add_page(app: faust.App, path: str, html: str) -> None:
    """Serve ``orchestrator/web/<html>`` at ``path`` and the pages' files under ``path/``: plain
    files with the pages' security headers, open like ``/health`` (their data needs a token)."""

    def asset(name: str) -> web.Response:
        try:
            return asset_response(name)
        except KeyError:
            return web.Response(text="not found", status=404)

    class Page(View):
        async def get(self, request: Request) -> web.Response:
            return asset(html)

    class PageFile(View):
        async def get(self, request: Request, name: str) -> web.Response:
            return asset(name)

    app.page(path)(Page)
    app.page(path + "/{name}")(PageFile)


def sse_event(kind: str, payload: bytes) -> bytes:
    """One server-sent event; ``payload`` is compact JSON (one line, as orjson writes it)."""
    return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"


def stream_event(status: int, body: bytes) -> tuple[Any, bytes]:
    """What a context answer shows on the stream: a key that changes only when the person's
    context does (not with ``updated_ts``), and the event to send."""
    if status == 200:
        record = orjson.loads(body)
        record.pop("updated_ts", None)
        return record, sse_event("context", body)
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    payload = orjson.dumps({"status": status, "error": error})
    return payload, sse_event("status", payload)


def add_console(app: faust.App, *, lookup: ContextLookup, publisher: ContextPublisher,
                metrics: EngineMetrics, security: WebSecurity) -> None:
    """Add ``/console``, its files under ``/console/``, and ``/context/{id}/events``."""
    streams = 0
    add_page(app, "/console", "console.html")

    async def follow(request: web.Request, response: web.StreamResponse, requested_id: str) -> None:
        shown: Any = None
        person_id: str | None = None
        published = asyncio.Event()
        watch: contextlib.ExitStack = contextlib.ExitStack()
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        try:
            while request.transport is not None and not request.transport.is_closing():
                status, body = await lookup(requested_id)
                key, event = stream_event(status, body)
                if key != shown:
                    await response.write(event)
                    shown, quiet_since = key, loop.time()
                    now_person = key.get("person_id") if isinstance(key, dict) else None
                    if now_person != person_id:  # first found, or a visitor now a customer
                        watch.close()
                        watch = contextlib.ExitStack()
                        if now_person is not None:
                            published = watch.enter_context(publisher.watching(now_person))
                        person_id = now_person
                elif loop.time() - quiet_since >= KEEPALIVE_S:
                    await response.write(b": keep-alive\n\n")
                    quiet_since = loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(published.wait(), POLL_S)
                published.clear()
        except (ConnectionError, RuntimeError):
            pass  # the client went away mid-write
        finally:
            watch.close()

    @app.page("/context/{requested_id}/events")
    class ContextEvents(View):
        async def get(self, request: Request, requested_id: str) -> Any:
            nonlocal streams
            refused = refusal(self, security.tokens, request, Scope.CONTEXT)
            if refused is not None:
                metrics.context_requests.labels("refused").inc()
                return refused
            if streams >= MAX_STREAMS:
                return self.json({"error": "too many live contexts open on this worker; retry"},
                                 status=503)
            response = web.StreamResponse(headers={
                "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no"})
            streams += 1
            try:
                await response.prepare(request)
                await follow(request, response, requested_id)
            finally:
                streams -= 1
            return response
