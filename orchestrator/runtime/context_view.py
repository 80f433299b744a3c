"""``GET /context/{id}``: a person's live context, by visitor id or customer id, from any worker.

The answer comes from the worker that owns the person, found in two steps without any shared
state: the identity link of a visitor id lives on the visitor's partition of the identity table,
the profile on the person's partition of the profile table. The worker the client asked does
both steps itself and asks the owner of each step's partition when that is another worker
(Faust's partition assignor knows every worker's announced address): ``/internal/identity/{id}``
answers which person an id belongs to, ``/context/{id}?person=...`` the context of a resolved
person. Those requests are signed with the worker secret (:mod:`orchestrator.core.forwarding`)
and answered by the receiver from its own partitions only, so a request is forwarded at most
once; ``person`` is ignored on any request that is not so signed.

Answers: 200 with the context record (``requested_id`` says which id was asked for), 404 when no
such person is known (never seen, or erased), 503 while the owning partition is not assigned
(a rebalance), 502 when the owning worker does not answer or answers with something unusable,
401/403 (``web_guard``) for a client without a token allowed to read contexts. Error bodies say
what happened, never where: addresses and exception text go to the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import faust
import orjson
from aiohttp import ClientError, ClientResponse, ClientTimeout
from faust.web import Request, Response, View
from yarl import URL

from orchestrator.core import forwarding
from orchestrator.core.access import Scope
from orchestrator.core.context import context_record
from orchestrator.core.forwarding import ContextRequest
from orchestrator.core.profile import is_erasure_marker
from orchestrator.runtime.log_throttle import ThrottledWarnings
from orchestrator.runtime.metrics import EngineMetrics
from orchestrator.runtime.partitioning import partition_of
from orchestrator.runtime.processing import wall_clock_ms
from orchestrator.runtime.stores import LinkStore, PersonStore
from orchestrator.runtime.web_guard import refusal
from orchestrator.runtime.web_security import WebSecurity

log = logging.getLogger(__name__)

#: The statuses this module answers with that may be passed on from the owning worker; any
#: other answer from it (401 from a worker with another secret, a 500) becomes a 502 here.
PASSED_ON = frozenset({200, 404, 503})
UNAVAILABLE = {"error": "the partition of this id is not assigned right now (rebalancing); retry"}
OWNER_FAILED = {"error": "the worker owning this id did not answer; retry"}
OWNER_TOO_LARGE = {"error": "the worker owning this id sent an answer larger than allowed"}
NOT_FOUND = {"error": "no person is known by this id"}
WORKERS_ONLY = {"error": "this page is for the engine's workers only"}


class NotOwnedHere(Exception):
    """A forwarded request for a partition this worker does not own: answered 503, not passed on."""


class OwnerFailed(Exception):
    """The owning worker's answer cannot be used; ``reason`` is for the log, ``body`` the client's."""

    def __init__(self, reason: str, body: dict[str, str] = OWNER_FAILED) -> None:
        super().__init__(reason)
        self.body = body


async def read_capped(response: ClientResponse, limit: int) -> bytes:
    """The body of ``response``, or :class:`OwnerFailed` once it is longer than ``limit``."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise OwnerFailed(f"declared {declared} bytes, over the limit of {limit}", OWNER_TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65_536):
        size += len(chunk)
        if size > limit:
            raise OwnerFailed(f"answer over the limit of {limit} bytes", OWNER_TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


#: The answer for a visitor or customer id as a client of ``GET /context/{id}`` gets it (the
#: token already checked): its status and JSON body.
ContextLookup = Callable[[str], Awaitable[tuple[int, bytes]]]


def add_context_view(app: faust.App, *, people: PersonStore, links: LinkStore, metrics: EngineMetrics,
                     partitions: int, model_versions: Callable[[str], dict[str, str]],
                     security: WebSecurity) -> ContextLookup:
    """Add ``/context/{id}`` and ``/internal/identity/{id}``; return the look-up they answer with."""
    secret = security.worker_secret
    timeout = ClientTimeout(total=security.forward_timeout_s)
    warnings = ThrottledWarnings(log)

    def owner(table: str, key: str) -> str | None:
        """The web address of the worker owning ``key`` in ``table``; None: this worker.

        The partition is the one the record key hashes to (the raw UTF-8 id, as the input
        topics are keyed), not Faust's ``router.key_store``, which hashes the table's own key
        serialisation and so can name another partition than the one the person lives on.
        KeyError: that partition is not assigned right now (a rebalance).
        """
        changelog = app.tables[table].changelog_topic.get_topic_name()
        partition = partition_of(key, partitions)
        url = next((url for url, topics in app.router.table_metadata(table).items()
                    if partition in topics.get(changelog, ())), None)
        if url is None:
            raise KeyError(partition)
        target, mine = URL(url), app.conf.canonical_url
        if (target.host, target.port) == (mine.host, mine.port):
            return None
        return str(target).rstrip("/")

    def owner_for(request: ContextRequest, table: str, key: str) -> str | None:
        elsewhere = owner(table, key)
        if elsewhere is not None and not request.may_forward:
            raise NotOwnedHere(f"{table} partition of {key!r} is owned by {elsewhere}")
        return elsewhere

    async def ask(base: str, kind: str, path: str, requested_id: str,
                  person_id: str | None) -> tuple[int, bytes]:
        """Ask the worker at ``base``; its status (one of :data:`PASSED_ON`) and body."""
        header = forwarding.sign(secret, kind, requested_id, person_id, now_s=int(time.time()))
        metrics.context_requests.labels("forwarded").inc()
        try:
            async with app.http_client.get(base + path, timeout=timeout, ssl=security.client_ssl or True,
                                           headers={forwarding.HEADER: header},
                                           allow_redirects=False) as response:
                body = await read_capped(response, security.forward_max_bytes)
                status = response.status
        except (ClientError, TimeoutError) as exc:
            raise OwnerFailed(f"{base}{path}: {exc!r}") from None
        except OwnerFailed as exc:
            raise OwnerFailed(f"{base}{path}: {exc}", exc.body) from None
        if status not in PASSED_ON:
            hint = (" (do the workers share one worker secret?)" if status in (401, 403) else "")
            raise OwnerFailed(f"{base}{path}: answered {status}{hint}")
        return status, body

    async def person_of(request: ContextRequest) -> str:
        """The person ``request.requested_id`` belongs to (its own id when it is not a linked
        visitor), looked up on the worker owning the id's identity partition."""
        requested_id = request.requested_id
        elsewhere = owner_for(request, "identity", requested_id)
        if elsewhere is None:
            link = links.get(requested_id)
            return link.customer_id if link is not None else requested_id
        status, body = await ask(elsewhere, "identity", f"/internal/identity/{quote(requested_id, safe='')}",
                                 requested_id, None)
        if status == 503:
            raise KeyError(requested_id)
        try:
            person_id = orjson.loads(body)["person_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise OwnerFailed(f"{elsewhere}: identity answer without a person id: {exc!r}") from None
        if not isinstance(person_id, str) or not person_id:
            raise OwnerFailed(f"{elsewhere}: identity answer with a bad person id")
        return person_id

    def json_bytes(answered: tuple[int, bytes]) -> Response:
        status, body = answered
        return app.web.bytes(body, content_type="application/json", status=status)

    def answer(payload: dict[str, Any], status: int) -> tuple[int, bytes]:
        return status, orjson.dumps(payload)

    def signed(request: Request, kind: str, requested_id: str, person_id: str | None) -> bool:
        header = request.headers.get(forwarding.HEADER)
        if header is None:
            return False
        valid = forwarding.verify(secret, header, kind, requested_id, person_id, now_s=int(time.time()))
        if not valid:
            warnings.warning("bad_signature", "a request to %s carried a %s header that is not a "
                             "valid worker signature (another secret, a clock off by more than "
                             "%d s, or not a worker); treated as a client's",
                             request.path, forwarding.HEADER, forwarding.MAX_CLOCK_SKEW_S)
        return valid

    async def context_of(request: ContextRequest) -> tuple[int, bytes]:
        person_id = request.person_id
        if person_id is None:
            person_id = await person_of(request)
        elsewhere = owner_for(request, "profiles", person_id)
        if elsewhere is not None:
            status, body = await ask(
                elsewhere, "context",
                f"/context/{quote(request.requested_id, safe='')}?person={quote(person_id, safe='')}",
                request.requested_id, person_id)
            return status, body
        profile = people.get(person_id)
        if profile is None or is_erasure_marker(profile):
            metrics.context_requests.labels("not_found").inc()
            return answer(NOT_FOUND, 404)
        record = context_record(profile, wall_clock_ms(), model_versions(person_id))
        metrics.context_requests.labels("found").inc()
        return answer({"requested_id": request.requested_id, **record}, 200)

    async def guarded(work: Awaitable[tuple[int, bytes]]) -> tuple[int, bytes]:
        """``await work``, with a rebalance, a misrouted forward and a failed owner answered
        without internals (the details are logged)."""
        try:
            return await work
        except KeyError:
            metrics.context_requests.labels("unavailable").inc()
            return answer(UNAVAILABLE, 503)
        except NotOwnedHere as exc:
            metrics.context_requests.labels("unavailable").inc()
            warnings.warning("not_owned", "a forwarded context request reached a worker that does "
                             "not own it (ownership changing?); answered 503, not forwarded again: %s",
                             exc)
            return answer(UNAVAILABLE, 503)
        except OwnerFailed as exc:
            metrics.context_requests.labels("owner_unreachable").inc()
            warnings.warning("owner_failed", "the worker owning a context request failed: %s", exc)
            return answer(exc.body, 502)

    @app.page("/context/{requested_id}")
    class Context(View):
        async def get(self, request: Request, requested_id: str) -> Response:
            query_person = request.query.get("person")
            forwarded = signed(request, "context", requested_id, query_person)
            if not forwarded:
                refused = refusal(self, security.tokens, request, Scope.CONTEXT)
                if refused is not None:
                    metrics.context_requests.labels("refused").inc()
                    return refused
            return json_bytes(await guarded(
                context_of(ContextRequest.of(requested_id, query_person, forwarded))))

    @app.page("/internal/identity/{requested_id}")
    class Identity(View):
        async def get(self, request: Request, requested_id: str) -> Response:
            if not signed(request, "identity", requested_id, None):
                return self.json(WORKERS_ONLY, status=403)
            resolving = ContextRequest.of(requested_id, None, forwarded=True)

            async def resolve() -> tuple[int, bytes]:
                return answer({"person_id": await person_of(resolving)}, 200)

            return json_bytes(await guarded(resolve()))

    async def lookup(requested_id: str) -> tuple[int, bytes]:
        return await guarded(context_of(ContextRequest.of(requested_id, None, forwarded=False)))

    return lookup
