"""The console's pages on a wired app over real HTTP: the live context stream needs the same
token and role as /context, starts with the context record, says when an id is unknown; the
static page is open and locked down by its headers."""

from __future__ import annotations

import orjson
from aiohttp import ClientSession

from tests.agents.test_http_security import OPERATOR, READER, Nodes, nodes, tokens_file

__all__ = ["nodes", "tokens_file"]  # the fixtures


async def first_event(url: str, token: str | None) -> tuple[int, str, str, dict]:
    """Status, content type, and the kind and data of the stream's first event."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with ClientSession() as session, session.get(url, headers=headers) as response:
        if response.status != 200:
            return response.status, response.content_type, "", orjson.loads(await response.read())
        block = b""
        while b"\n\n" not in block:
            block += await response.content.readany()
        lines = dict(line.split(": ", 1) for line in block.split(b"\n\n")[0].decode().splitlines())
        return response.status, response.content_type, lines["event"], orjson.loads(lines["data"])


async def test_the_stream_needs_a_context_token_and_starts_with_the_context(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    await node.see("v-1")
    status, _, _, body = await first_event(f"{node.url}/context/v-1/events", None)
    assert status == 401 and "person_id" not in body
    status, _, _, _ = await first_event(f"{node.url}/context/v-1/events", "x" * 40)
    assert status == 401
    for token in (READER, OPERATOR):
        status, content_type, kind, record = await first_event(f"{node.url}/context/v-1/events", token)
        assert (status, content_type, kind) == (200, "text/event-stream", "context")
        assert (record["person_id"], record["requested_id"]) == ("v-1", "v-1")


async def test_the_stream_of_an_unknown_id_says_404(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    status, _, kind, body = await first_event(f"{node.url}/context/v-nobody/events", READER)
    assert (status, kind, body["status"]) == (200, "status", 404)
    assert "person" in body["error"]


async def test_the_console_page_is_open_and_loads_only_its_own_files(nodes: Nodes) -> None:
    (node,) = await nodes(1)
    async with ClientSession() as session:
        async with session.get(f"{node.url}/console") as response:
            assert response.status == 200 and response.content_type == "text/html"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert 'id="lookup-id"' in await response.text()
        async with session.get(f"{node.url}/console/console.js") as response:
            assert (response.status, response.content_type) == (200, "text/javascript")
        for missing in ("nothing.js", "__init__.py", "..%2F__init__.py"):
            async with session.get(f"{node.url}/console/{missing}") as response:
                assert response.status == 404, missing
