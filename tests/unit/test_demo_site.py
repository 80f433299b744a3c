"""What the demo website may send: contract clickstream records of its own pages, nothing else."""

from __future__ import annotations

import orjson
import pytest

from orchestrator.core.events import Accepted, Source, decode_record
from orchestrator.demo_site import PAGES, BadClick, click_record

VISITOR = "v-demo-0123456789ab"


@pytest.mark.parametrize("url", sorted(PAGES))
def test_a_page_view_of_every_page_is_a_valid_contract_record(url: str) -> None:
    now = 1_795_473_584_163
    record = click_record({"visitor_id": VISITOR, "type": "page_view", "url": url}, now)
    decoded = decode_record(Source.CLICKSTREAM, VISITOR.encode(), orjson.dumps(record), now)
    assert isinstance(decoded, Accepted), decoded
    assert record["page"]["url"] == url and "customer_id" not in record
    assert record["session_id"] == f"s-{VISITOR}"


def test_login_and_later_clicks_carry_the_visitors_customer_id() -> None:
    login = click_record({"visitor_id": VISITOR, "type": "login"}, 1)
    page = click_record({"visitor_id": VISITOR, "type": "page_view", "url": "/billing",
                         "logged_in": True}, 2)
    assert login["type"] == "login"
    assert login["customer_id"] == page["customer_id"] == "c-demo-0123456789ab"
    assert login["event_id"] != page["event_id"]


@pytest.mark.parametrize(("click", "says"), [
    ([], "JSON object"),
    ({"visitor_id": "c-4711", "type": "login"}, "visitor_id"),
    ({"visitor_id": VISITOR, "type": "purchase"}, "type"),
    ({"visitor_id": VISITOR, "type": "page_view", "url": "https://elsewhere.example/"}, "url"),
])
def test_anything_else_is_refused_saying_what_is_wrong(click: object, says: str) -> None:
    with pytest.raises(BadClick, match=says):
        click_record(click, 1)
