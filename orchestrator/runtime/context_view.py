"""``GET /context/{id}``: a person's live context, by visitor id or customer id, from any worker.

The answer comes from the worker that owns the person, found in two steps without any shared
state: the identity link of a visitor id lives on the visitor's partition of the identity table,
the profile on the person's partition of the profile table. A worker that does not own a step's
partition forwards the request to the one that does (Faust's partition assignor knows every
worker's web address), with the person already resolved when the second step is forwarded.

Answers: 200 with the context record (``requested_id`` says which id was asked for), 404 when no
such person is known (never seen, or erased), 503 while the owning partition is not assigned
(a rebalance), 502 when the owning worker does not answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import faust
import orjson
from aiohttp import ClientError, ClientTimeout
from faust.web import Request, Response, View
from yarl import URL

from orchestrator.core.context import context_record
from orchestrator.core.profile import is_erasure_marker
from orchestrator.runtime.metrics import EngineMetrics
from orchestrator.runtime.partitioning import partition_of
from orchestrator.runtime.processing import wall_clock_ms
from orchestrator.runtime.stores import LinkStore, PersonStore

log = logging.getLogger(__name__)

FORWARD_TIMEOUT = ClientTimeout(total=5.0)


def add_context_view(app: faust.App, *, people: PersonStore, links: LinkStore, metrics: EngineMetrics,
                     partitions: int,
                     model_versions: Callable[[str], dict[str, str]]) -> None:
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

    async def forward(base: str, path: str) -> Response:
        async with app.http_client.get(base + path, timeout=FORWARD_TIMEOUT) as response:
            body = await response.read()
            return json_bytes(body, response.status)

    def json_bytes(body: bytes, status: int) -> Response:
        return app.web.bytes(body, content_type="application/json", status=status)

    def answer(payload: dict[str, Any], status: int) -> Response:
        return json_bytes(orjson.dumps(payload), status)

    @app.page("/context/{requested_id}")
    class Context(View):
        async def get(self, request: Request, requested_id: str) -> Response:
            person_id = request.query.get("person")
            try:
                if person_id is None:
                    elsewhere = owner("identity", requested_id)
                    if elsewhere is not None:
                        metrics.context_requests.labels("forwarded").inc()
                        return await forward(elsewhere, f"/context/{quote(requested_id, safe='')}")
                    link = links.get(requested_id)
                    person_id = link.customer_id if link is not None else requested_id
                elsewhere = owner("profiles", person_id)
                if elsewhere is not None:
                    metrics.context_requests.labels("forwarded").inc()
                    return await forward(elsewhere, f"/context/{quote(requested_id, safe='')}"
                                                    f"?person={quote(person_id, safe='')}")
            except KeyError:
                metrics.context_requests.labels("unavailable").inc()
                return answer({"error": "the partition of this id is not assigned right now "
                                        "(rebalancing); retry"}, 503)
            except (ClientError, TimeoutError) as exc:
                metrics.context_requests.labels("owner_unreachable").inc()
                return answer({"error": f"the worker owning this id did not answer: {exc}"}, 502)
            profile = people.get(person_id)
            if profile is None or is_erasure_marker(profile):
                metrics.context_requests.labels("not_found").inc()
                return answer({"error": f"no person known by {requested_id!r}", "person_id": person_id,
                               "worker": str(app.conf.canonical_url),}, 404)
            record = context_record(profile, wall_clock_ms(),
                                    model_versions(person_id))
            metrics.context_requests.labels("found").inc()
            return answer({"requested_id": requested_id, **record}, 200)
