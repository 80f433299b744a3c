"""The worker's HTTP pages behind tokens, and forwarding between workers, over real HTTP.

Each "worker" here is a wired app (in-memory tables, no broker) serving its pages on a local
port; which worker owns which partition is set by hand (what Faust's assignor would announce),
so two workers can be made to agree or to disagree.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from orchestrator.core import forwarding
from orchestrator.runtime.app import Engine, build_app
from orchestrator.runtime.settings import load_rules, load_settings
from orchestrator.runtime.web_security import load_web_security
from tests.agents.conftest import RecordingEmitter, handled, now_ms, page_view
from tests.e2e.conftest import free_port

READER = "r" * 40
OPERATOR = "o" * 40
TABLES = ("identity", "profiles")


@dataclass
class Node:
    """One worker: its engine, its server and the routing it believes in."""

    engine: Engine
    port: int
    owners: dict[str, str]  # table -> the URL of the worker owning all of its partitions

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def counted(self, result: str) -> float:
        return self.engine.metrics.context_requests.labels(result)._value.get()

    async def see(self, visitor: str, customer: str | None = None) -> None:
        """One page view of ``visitor`` handled here (a profile, and with ``customer`` a link)."""
        processor = self.engine.processor
        key = visitor.encode()
        await handled(processor, "clickstream", 0, int(time.time_ns() % 10**9), now_ms(), key,
                      page_view(f"e-{visitor}-{time.time_ns()}", visitor, "/billing", "billing",
                                customer_id=customer))

    async def call(self, customer: str) -> None:
        """A contact-centre record of ``customer`` handled here (their profile)."""
        record = {"event_id": f"cc-{customer}-{time.time_ns()}", "type": "contact_started",
                  "ts": now_ms(), "customer_id": customer, "channel": "phone", "reason": "billing"}
        await handled(self.engine.processor, "contact-centre", 0, int(time.time_ns() % 10**9),
                      now_ms(), customer.encode(), orjson.dumps(record))


Nodes = Callable[..., Any]


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# test clients\ncontext-reader {READER}\noperator {OPERATOR}\n")
    return path


@pytest.fixture
async def nodes(tokens_file: Path, unique: str) -> AsyncIterator[Nodes]:
    """``await nodes(n)``: n workers of one app, each owning everything until told otherwise."""
    async with AsyncExitStack() as stack:

        async def start(count: int, secrets: list[str] | None = None,
                        **security: Any) -> list[Node]:
            started = []
            for index in range(count):
                port = free_port()
                settings = load_settings(store="memory", app_id=f"http-{unique}", web_port=port,
                                         state_flush_records=1, web_tokens_file=tokens_file,
                                         web_worker_secret=(secrets or ["s" * 32] * count)[index])
                base = load_web_security(settings)
                engine = build_app(settings, load_rules(settings.rules_dir), emitter=RecordingEmitter(),
                                   security=replace(base, **security) if security else base)
                engine.app.finalize()
                engine.app.conf.store = "memory://"
                for table in (engine.profiles, engine.identity):
                    # No broker here: table writes stay in memory, with no changelog record.
                    table.on_key_set = lambda key, value: None
                node = Node(engine, port, {})
                node.owners = dict.fromkeys(TABLES, node.url)
                _route_by_hand(node, settings.partitions)
                engine.app.web.init_server()
                server = TestServer(engine.app.web.web_app, host="127.0.0.1", port=port)
                await stack.enter_async_context(server)
                stack.push_async_callback(_close_http_client, engine)
                started.append(node)
            return started

        yield start


def _route_by_hand(node: Node, partitions: int) -> None:
    app = node.engine.app

    def table_metadata(table: str) -> dict[str, dict[str, set[int]]]:
        changelog = app.tables[table].changelog_topic.get_topic_name()
        return {node.owners[table]: {changelog: set(range(partitions))}}

    app.router.table_metadata = table_metadata  # what Faust's assignor would announce


async def _close_http_client(engine: Engine) -> None:
    session = engine.app._http_client
    if session is not None:
        await session.close()


async def get(url: str, token: str | None = None, headers: dict[str, str] | None = None
              ) -> tuple[int, dict[str, Any], Any]:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with ClientSession() as session, session.get(url, headers=sent) as response:
        return response.status, orjson.loads(await response.read()), response.headers


# ------------------------------------------------------------------ tokens and roles

async def test_a_context_without_a_token_is_refused_with_a_bearer_challenge(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    await node.see("v-1")
    status, body, headers = await get(f"{node.url}/context/v-1")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert "person_id" not in body and "recent_pages" not in body


async def test_an_unknown_token_is_refused_as_invalid(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    status, _, headers = await get(f"{node.url}/context/v-1", token="x" * 40)
    assert status == 401
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert node.counted("refused") == 1


async def test_a_context_reader_reads_a_context_but_not_the_rules(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    await node.see("v-1")
    status, body, _ = await get(f"{node.url}/context/v-1", token=READER)
    assert (status, body["person_id"], body["requested_id"]) == (200, "v-1", "v-1")
    status, _, headers = await get(f"{node.url}/rules", token=READER)
    assert status == 403
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]


async def test_an_operator_reads_the_rules_and_contexts(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    await node.see("v-1")
    assert (await get(f"{node.url}/rules", token=OPERATOR))[0] == 200
    assert (await get(f"{node.url}/context/v-1", token=OPERATOR))[0] == 200


async def test_health_ready_and_metrics_stay_open_and_faust_table_pages_are_gone(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    await node.see("v-1")
    async with ClientSession() as session:
        for path in ("/health", "/ready", "/metrics"):
            async with session.get(node.url + path) as response:
                assert response.status in (200, 503), path  # /ready: 503, nothing assigned here
                assert response.status != 401
        for path in ("/table/", "/table/profiles/v-1/", "/router/"):
            async with session.get(node.url + path) as response:
                assert response.status == 404, path


# ------------------------------------------------------------------ the person parameter

async def test_a_clients_person_parameter_is_ignored(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    await node.see("v-1")
    status, body, _ = await get(f"{node.url}/context/anything?person=v-1", token=READER)
    assert status == 404
    assert "v-1" not in orjson.dumps(body).decode()


async def test_a_person_parameter_with_a_forged_worker_header_is_ignored(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    await node.see("v-1")
    forged = forwarding.sign(b"another secret of 32 characters!", "context", "anything", "v-1",
                             now_s=int(time.time()))
    status, _, _ = await get(f"{node.url}/context/anything?person=v-1", token=READER,
                             headers={forwarding.HEADER: forged})
    assert status == 404
    status, _, _ = await get(f"{node.url}/context/anything?person=v-1",
                             headers={forwarding.HEADER: forged})
    assert status == 401  # a bad signature is a client's request like any other


async def test_the_internal_identity_page_answers_workers_only(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    await node.see("v-1", customer="c-1")
    status, body, _ = await get(f"{node.url}/internal/identity/v-1", token=OPERATOR)
    assert status == 403
    assert "c-1" not in orjson.dumps(body).decode()


# ------------------------------------------------------------------ forwarding

async def test_a_context_is_read_through_the_workers_that_own_the_link_and_the_profile(
        nodes: Nodes) -> None:
    asked, link_owner, profile_owner = await nodes(3)
    asked.owners = {"identity": link_owner.url, "profiles": profile_owner.url}
    await link_owner.see("v-1", customer="c-1")
    await profile_owner.call("c-1")
    status, body, _ = await get(f"{asked.url}/context/v-1", token=READER)
    assert (status, body["person_id"], body["requested_id"]) == (200, "c-1", "v-1")
    assert asked.counted("forwarded") == 2  # one request to each owner, none passed on
    assert link_owner.counted("forwarded") == profile_owner.counted("forwarded") == 0


async def test_a_forwarded_request_is_never_forwarded_again(nodes: Nodes) -> None:
    first, second = await nodes(2)
    # They disagree: each believes the other owns everything.
    first.owners = dict.fromkeys(TABLES, second.url)
    second.owners = dict.fromkeys(TABLES, first.url)
    status, body, _ = await get(f"{first.url}/context/c-1", token=READER)
    assert status == 503
    assert first.counted("forwarded") == 1
    assert second.counted("forwarded") == 0
    assert second.counted("unavailable") == 1
    assert "http" not in orjson.dumps(body).decode()


async def test_a_worker_with_another_secret_is_not_trusted(nodes: Nodes,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    asked, owner = await nodes(2, secrets=["a" * 32, "b" * 32])
    asked.owners = dict.fromkeys(TABLES, owner.url)
    await owner.see("v-1")
    with caplog.at_level(logging.WARNING):
        status, body, _ = await get(f"{asked.url}/context/v-1", token=READER)
    assert status == 502
    assert "secret" in caplog.text
    assert owner.url not in orjson.dumps(body).decode()


# ------------------------------------------------------------------ error bodies

async def test_an_unreachable_owner_gives_a_502_naming_no_address_and_logs_it(
        nodes: Nodes, caplog: pytest.LogCaptureFixture) -> None:
    (node,) = await nodes(1)
    gone = f"http://127.0.0.1:{free_port()}"
    node.owners = dict.fromkeys(TABLES, gone)
    with caplog.at_level(logging.WARNING):
        status, body, _ = await get(f"{node.url}/context/v-1", token=READER)
    assert status == 502
    text = orjson.dumps(body).decode()
    assert "127.0.0.1" not in text and "http" not in text and "Error" not in text
    assert gone in caplog.text


async def test_an_unknown_id_gives_a_404_without_worker_or_person(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    status, body, _ = await get(f"{node.url}/context/v-unknown", token=READER)
    assert status == 404
    assert set(body) == {"error"}


async def test_an_oversized_answer_from_the_owner_is_a_502(nodes: Nodes, unique: str) -> None:
    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b'{"person_id": "' + b"x" * 200_000 + b'"}',
                            content_type="application/json")

    peer = web.Application()
    peer.router.add_get("/{tail:.*}", huge)
    async with TestServer(peer, host="127.0.0.1") as server:
        (node,) = await nodes(1, forward_max_bytes=65_536)
        node.owners = dict.fromkeys(TABLES, str(server.make_url("")).rstrip("/"))
        status, body, _ = await get(f"{node.url}/context/v-1", token=READER)
    assert status == 502
    assert body == {"error": "the worker owning this id sent an answer larger than allowed"}

