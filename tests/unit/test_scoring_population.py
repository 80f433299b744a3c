"""The simulated population: deterministic, contract-valid, in event time, outcomes follow behaviour."""

from __future__ import annotations

from collections import defaultdict
from itertools import islice

import orjson
import pytest

from orchestrator.core.events import Accepted, ClickstreamEvent, Source, decode_record
from orchestrator.simulate.population import Population

pytestmark = pytest.mark.unit

DAY = 86_400_000


@pytest.fixture(scope="module")
def records() -> list:
    return list(Population(seed=11, people=800, days=21).records())


def test_the_same_seed_gives_the_same_records_and_another_seed_others() -> None:
    first = list(islice(Population(seed=3, people=60).records(), 2000))
    assert first == list(islice(Population(seed=3, people=60).records(), 2000))
    assert first != list(islice(Population(seed=4, people=60).records(), 2000))


def test_records_are_in_event_time_order_over_the_simulated_days(records: list) -> None:
    times = [value["ts"] for _, _, value in records]
    assert times == sorted(times)
    assert times[-1] - times[0] > 15 * DAY  # weeks of event time, not the wall clock


def test_every_record_decodes_under_the_contract_with_its_key(records: list) -> None:
    for source, key, value in records:
        decoded = decode_record(source, key.encode(), orjson.dumps(value), now_ms=value["ts"])
        assert isinstance(decoded, Accepted), (decoded, value)
        if isinstance(decoded.event, ClickstreamEvent):
            assert decoded.event.session_id is not None


def test_clickstream_carries_the_customer_id_after_login_and_not_after_logout(records: list) -> None:
    # Per visitor: logged in since a login in session ``session``, or not logged in (None).
    login_session: dict[str, str | None] = {}
    logged_out: set[str] = set()
    checked_after_logout = 0
    for source, key, value in records:
        if source is not Source.CLICKSTREAM:
            continue
        carries, session = "customer_id" in value, value["session_id"]
        logged_in_in = login_session.get(key)
        if value["type"] in ("login", "signup"):
            assert carries, value
            login_session[key] = session
        elif value["type"] == "logout":
            assert carries and logged_in_in is not None, value  # the logout is of a logged-in visitor
            login_session[key] = None
            logged_out.add(key)
        elif logged_in_in == session:
            assert carries, value  # the rest of the session after a login
        elif logged_in_in is not None:
            # A new session: the login is remembered or not, and then holds for the session.
            login_session[key] = session if carries else None
        else:
            assert not carries, value  # not after a logout (nor before any login)
            checked_after_logout += key in logged_out
    assert sum(1 for _, _, v in records if v["type"] == "login") > 100
    assert checked_after_logout > 100


def rate(hits: list[bool]) -> float:
    return sum(hits) / len(hits)


def test_anonymous_readers_of_account_pages_log_in_more_often(records: list) -> None:
    # Per session of a visitor who is a customer (logs in some time): account pages read while
    # anonymous, and whether the session then logs in.
    customers = {key for source, key, v in records if source is Source.CLICKSTREAM and "customer_id" in v}
    sessions: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for source, key, v in records:
        if source is not Source.CLICKSTREAM or key not in customers:
            continue
        s = sessions[v["session_id"]]
        if v["type"] == "login":
            s[1] = 1
        elif v["type"] == "page_view" and not s[1] and "customer_id" not in v and \
                v["page"].get("category") in ("account", "billing", "invoices"):
            s[0] += 1
    many = [bool(logged) for pages, logged in sessions.values() if pages >= 3]
    none = [bool(logged) for pages, logged in sessions.values() if pages == 0]
    assert len(many) > 50 and len(none) > 50
    assert rate(many) > 2 * rate(none) > 0  # more likely, but not certain either way
    assert rate(many) < 0.95


def test_shoppers_who_add_to_cart_buy_more_often(records: list) -> None:
    sessions: dict[str, set[str]] = defaultdict(set)
    for source, _, v in records:
        if source is Source.CLICKSTREAM:
            sessions[v["session_id"]].add(v["type"])
    with_cart = [("purchase" in t or "signup" in t) for t in sessions.values() if "add_to_cart" in t]
    without = [("purchase" in t or "signup" in t) for t in sessions.values() if "add_to_cart" not in t]
    assert rate(with_cart) > 2 * rate(without) > 0


def test_unhappy_billing_contacts_precede_cancellations(records: list) -> None:
    unhappy: set[str] = set()
    contacted: set[str] = set()
    cancelled: set[str] = set()
    for source, key, v in records:
        if source is not Source.CONTACT_CENTRE:
            continue
        if v["type"] == "cancellation_requested":
            cancelled.add(key)
        elif v["type"] in ("contact_started", "callback_requested"):
            contacted.add(key)
            if v["reason"] == "billing" and v["sentiment"] < -0.2 and key not in cancelled:
                unhappy.add(key)
    others = contacted - unhappy
    assert len(unhappy) > 20
    assert rate([k in cancelled for k in unhappy]) > 2 * rate([k in cancelled for k in others])


def test_sessions_are_long_tailed(records: list) -> None:
    pages: dict[str, int] = defaultdict(int)
    for source, _, v in records:
        if source is Source.CLICKSTREAM and v["type"] == "page_view":
            pages[v["session_id"]] += 1
    lengths = sorted(pages.values())
    assert lengths[len(lengths) // 2] <= 8 and lengths[-1] >= 50


def test_buyers_are_not_told_apart_by_the_number_of_product_pages_alone(records: list) -> None:
    # Per shopping session: product pages read, mean time per product page, and whether it bought.
    sessions: dict[str, list] = defaultdict(lambda: [0, 0, None, False])  # pages, ms, last ts, bought
    for source, _, v in records:
        if source is not Source.CLICKSTREAM:
            continue
        s = sessions[v["session_id"]]
        if s[2] is not None and s[3] is False and s[0]:
            s[1] += v["ts"] - s[2]
        s[2] = v["ts"] if v["type"] == "page_view" and v["page"].get("category") in (
            "products", "pricing", "offers") else None
        s[0] += s[2] is not None
        if v["type"] in ("purchase", "signup"):
            s[3] = True
    shopping = [s for s in sessions.values() if s[0] >= 2]
    many = [s[3] for s in shopping if s[0] >= 20]
    few = [s[3] for s in shopping if 2 <= s[0] <= 5]
    slow = [s[3] for s in shopping if s[1] / s[0] >= 40_000]
    quick = [s[3] for s in shopping if s[1] / s[0] < 15_000]
    assert len(many) > 30 and len(slow) > 30 and len(quick) > 30
    assert rate(many) < 2 * rate(few)  # reading more pages is no sure sign
    assert rate(slow) > 2 * rate(quick)  # reading them longer is


def test_the_promotion_makes_offers_readers_buy_more_in_the_later_part(records: list) -> None:
    start = records[0][2]["ts"]
    half = start + 21 * DAY * 0.5
    sessions: dict[str, list] = defaultdict(lambda: [0, False, 0])  # offers pages, bought, ts
    for source, _, v in records:
        if source is Source.CLICKSTREAM:
            s = sessions[v["session_id"]]
            s[2] = s[2] or v["ts"]
            s[0] += v["type"] == "page_view" and v["page"].get("category") == "offers"
            s[1] |= v["type"] in ("purchase", "signup")
    before = [s[1] for s in sessions.values() if s[0] and s[2] < half]
    after = [s[1] for s in sessions.values() if s[0] and s[2] >= half]
    assert rate(after) > 1.2 * rate(before)
