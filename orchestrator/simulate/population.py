"""A seeded population whose outcomes depend on behaviour, in event time, for learning tests.

Unlike the personas (one short journey each, stamped when sent), this simulates a population of
people over many days of *event time* compressed into a generator: each record carries its own
``ts``, advancing through the simulated weeks, so it can be fed straight to the pure core or
replayed into Kafka at full speed. What people do later depends on what they did before, with
noise, so that a model can learn it (AUC well above 0.5) but not perfectly (below 1):

- anonymous **customers who read account/billing pages** log in within minutes, more often the
  more (and the longer) such pages they read; some log in for no visible reason;
- **shoppers buy according to how they read, not how much**: a hidden drive per visit makes
  buyers read product and pricing pages longer (time on page is the gap to the next page),
  look at prices more often and add to cart, while comparison shoppers read dozens of product
  pages quickly and rarely buy; no single count separates buyers. Customers buy, prospects
  sign up, now or when they come back within hours;
- **failed self-service** (help pages read long, a form started but not submitted) leads to a
  contact (``contact_started`` or ``callback_requested``) within hours;
- **negative-sentiment billing contacts** and reading contract/cancellation pages, in this visit
  and in earlier ones, lead to a ``cancellation_requested`` within days;
- **drift**: from :data:`PROMOTION_FROM` of the period on, a promotion makes offers pages sell
  more (and everyone sees more of them); from :data:`LOGIN_BANNER_FROM` on, a login banner
  makes anonymous account readers log in more readily;
- **long sessions**: page counts are heavy-tailed (shopping visits of 50-250 pages occur).

Records follow the contract (docs in README.md, ``orchestrator.core.events``): clickstream keyed
by visitor id, carrying ``customer_id`` while the visitor is logged in, and a ``session_id``;
contact-centre keyed by customer id. :meth:`Population.records` yields ``(source, key, value)``
sorted by ``ts`` (each person's records in order); :meth:`Population.person_of` maps a visitor
or customer id to the simulated person (the stitching an identity service would do).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.events import Source

#: 2026-05-28T20:26:40Z: the simulated weeks start here.
START_TS = 1_780_000_000_000
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

Record = tuple[Source, str, dict[str, Any]]

ACCOUNT_PAGES = [("/account/overview", "account"), ("/account/billing", "billing"),
                 ("/billing/invoices", "invoices"), ("/billing/payment-methods", "billing"),
                 ("/account/settings", "account"), ("/billing/invoices/latest", "invoices")]
PRODUCT_PAGES = [("/products/broadband", "products"), ("/products/mobile", "products"),
                 ("/pricing", "pricing"), ("/compare", "products"), ("/offers", "offers"),
                 ("/offers/bundle", "offers")]
HELP_PAGES = [("/help/router", "help"), ("/help/faq", "help"), ("/self-service/reset", "self-service"),
              ("/help/outage", "help"), ("/self-service/diagnostics", "self-service"),
              ("/contact", "contact")]
CONTRACT_PAGES = [("/account/contract", "contract"), ("/account/contract/options", "contract"),
                  ("/cancellation", "cancellation"), ("/cancellation/notice", "cancellation")]
MOVING_PAGES = [("/account/moving", "moving"), ("/help/moving", "moving")]
BROWSE_PAGES = [("/", "home"), ("/news", "news"), ("/blog/tips", "blog"), ("/about", None),
                ("/careers", "careers"), ("/", "home")]

MODES = ("browse", "account", "shop", "support", "contract", "moving")
#: Drift: from this share of the simulated period on, a promotion runs (offers sell more) ...
PROMOTION_FROM = 0.5
#: ... and from this share on, a login banner makes anonymous account readers log in sooner.
LOGIN_BANNER_FROM = 0.6


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class _Person:
    index: int
    rng: random.Random
    visitor_id: str
    customer_id: str | None
    prospect_customer_id: str  # the id a prospect gets at signup
    billing_trouble: bool
    tech_trouble: bool
    churn_prone: float
    shopper: float
    logged_in: bool = False
    remembered: bool = False
    cancelled: bool = False
    contract_reads: int = 0
    counter: int = 0
    out: list[tuple[int, int, Record]] = field(default_factory=list)

    def emit(self, ts: int, source: Source, key: str, value: dict[str, Any]) -> None:
        self.counter += 1
        value["ts"] = ts
        self.out.append((ts, self.counter, (source, key, value)))

    def event_id(self, prefix: str) -> str:
        return f"{prefix}{self.index}-{self.counter + 1}"


@dataclass(frozen=True)
class Population:
    """``people`` simulated people over ``days`` days of event time from ``start_ts``.

    Deterministic: the same arguments give the same records, one person's records do not
    depend on the others'.
    """

    seed: int = 20261124
    people: int = 2000
    days: int = 28
    start_ts: int = START_TS
    customer_share: float = 0.65

    def person_of(self, key: str) -> str:
        """The simulated person behind a visitor or customer id (``p-<index>``)."""
        return "p-" + key.rsplit("-", 1)[1]

    def records(self) -> Iterator[Record]:
        """Every record of every person, sorted by ``ts`` (ties: person, then their order)."""
        streams = (((ts, i, n, rec) for ts, n, rec in self._person(i)) for i in range(self.people))
        for _ts, _i, _n, record in heapq.merge(*streams):
            yield record

    # ------------------------------------------------------------------ one person

    def _person(self, index: int) -> list[tuple[int, int, Record]]:
        rng = random.Random(f"{self.seed}:{index}")
        customer = rng.random() < self.customer_share
        p = _Person(
            index=index, rng=rng, visitor_id=f"v-{rng.getrandbits(32):08x}-{index}",
            customer_id=f"c-{rng.getrandbits(24):06x}-{index}" if customer else None,
            prospect_customer_id=f"c-new-{index}",
            billing_trouble=customer and rng.random() < 0.3,
            tech_trouble=customer and rng.random() < 0.25,
            churn_prone=rng.betavariate(1.2, 5) if customer else 0.0,
            shopper=rng.betavariate(2, 3) if not customer else rng.betavariate(1, 5),
        )
        end = self.start_ts + self.days * DAY
        # Activities: (ts, order, kind, detail), processed in time order so that state
        # (logged in, cancelled) follows the person's own history.
        agenda: list[tuple[int, int, str, Any]] = []
        n_sessions = 1 + min(30, int(rng.expovariate(1 / 5)))
        for k in range(n_sessions):
            day = rng.randrange(self.days)
            hour = rng.choices(range(24), weights=_HOUR_WEIGHTS)[0]
            ts = self.start_ts + day * DAY + hour * HOUR + rng.randrange(HOUR)
            heapq.heappush(agenda, (ts, k, "session", None))
        order = n_sessions
        if customer and rng.random() < 0.25:  # contacts for no visible web reason (noise)
            ts = self.start_ts + rng.randrange(self.days * DAY)
            heapq.heappush(agenda, (ts, order, "contact",
                                    ("contact_started", rng.choice(["moving", "contract", "other",
                                                                    "billing"]),
                                     round(rng.uniform(-0.3, 0.8), 2))))
            order += 1
        busy_until = 0
        while agenda:
            ts, _, kind, detail = heapq.heappop(agenda)
            if ts >= end or (p.cancelled and rng.random() < 0.8):
                continue
            if kind == "session":
                ts = max(ts, busy_until + 31 * MINUTE)
                if ts >= end:
                    continue
                busy_until, follow_ups = self._session(p, ts, detail)
            else:
                follow_ups = self._contact(p, ts, *detail)
            for when, what, more in follow_ups:
                order += 1
                heapq.heappush(agenda, (when, order, what, more))
        p.out.sort(key=lambda item: (item[0], item[1]))
        return p.out

    def _mode(self, p: _Person) -> str:
        rng = p.rng
        if p.customer_id is None:
            weights = (3, 0, 2 + 8 * p.shopper, 1, 0, 0)
        else:
            weights = (2, 2 + 3 * p.billing_trouble, 1 + 4 * p.shopper, 1 + 4 * p.tech_trouble,
                       0.3 + 5 * p.churn_prone, 0.5)
        return rng.choices(MODES, weights=weights)[0]

    def _session(self, p: _Person, ts: int, forced_mode: str | None
                 ) -> tuple[int, list[tuple[int, str, Any]]]:
        rng = p.rng
        mode = forced_mode or self._mode(p)
        session_id = f"s-{p.index}-{rng.getrandbits(24):06x}"
        follow_ups: list[tuple[int, str, Any]] = []
        if not p.remembered:
            p.logged_in = False
        # Where in the simulated period we are (0 at the start, 1 at the end): drift.
        phase = (ts - self.start_ts) / (self.days * DAY)
        promotion = phase >= PROMOTION_FROM
        # How much this visit is about buying: seen only through how the person reads
        # (longer on products and pricing, more pricing pages, a cart), never by one count.
        drive = rng.gauss(0.0, 1.0) + 1.2 * (p.shopper - 0.3)
        counts = {"account": 0, "shop": 0, "help": 0, "contract": 0, "offers": 0}
        seconds = {"account": 0.0, "shop": 0.0, "help": 0.0}

        def web(event_type: str, **extra: Any) -> None:
            value: dict[str, Any] = {"event_id": p.event_id("e"), "type": event_type,
                                     "visitor_id": p.visitor_id, "session_id": session_id, **extra}
            if p.logged_in and p.customer_id is not None:
                value["customer_id"] = p.customer_id
            p.emit(now, Source.CLICKSTREAM, p.visitor_id, value)

        def page(url: str, category: str | None) -> None:
            web("page_view", page={"url": url, "category": category} if category
                else {"url": url})

        def think(lo: float, hi: float) -> int:
            return int(rng.uniform(lo, hi) * SECOND)

        def read(kind: str) -> int:
            # Seconds on a page (the gap to the next one): heavy-tailed; buyers read product
            # and pricing pages longer, people in trouble read help pages longer.
            base = {"shop": 22.0 * math.exp(0.45 * drive), "help": 30.0 * (1.6 if p.tech_trouble else 1.0),
                    "account": 25.0}.get(kind, 15.0)
            return int(min(900.0, rng.lognormvariate(math.log(base), 0.7)) * SECOND)

        now = ts
        page("/", "home")
        now += think(3, 20)
        # Some customers log in straight away, whatever they do next (noise for the model).
        if p.customer_id is not None and not p.logged_in and rng.random() < 0.07:
            self._login(p, web)
            now += think(3, 20)
        pool = {"browse": BROWSE_PAGES, "account": ACCOUNT_PAGES, "shop": PRODUCT_PAGES,
                "support": HELP_PAGES, "contract": CONTRACT_PAGES, "moving": MOVING_PAGES,
                "buy": PRODUCT_PAGES}[mode]
        if mode == "buy":
            n_pages = rng.randint(0, 2)
        elif mode == "shop":  # long sessions: comparison shoppers read dozens of pages
            n_pages = min(250, int(rng.lognormvariate(math.log(7.0) - 0.25 * drive, 0.9)))
        else:
            n_pages = min(120, 1 + int(rng.lognormvariate(math.log(3.5), 0.8)))
        login_boost = 1.5 if phase >= LOGIN_BANNER_FROM else 1.0
        for _ in range(n_pages):
            if rng.random() < 0.15:  # wander off-topic
                url, category = rng.choice(BROWSE_PAGES + ACCOUNT_PAGES[:2] + PRODUCT_PAGES[:2])
            elif pool is PRODUCT_PAGES:
                # Buyers look at prices and offers; during the promotion everyone sees offers.
                r = rng.random()
                if r < 0.1 + 0.2 * _sigmoid(drive):
                    url, category = "/pricing", "pricing"
                elif r < 0.3 + (0.2 if promotion else 0.0):
                    url, category = rng.choice(PRODUCT_PAGES[4:])
                else:
                    url, category = rng.choice(PRODUCT_PAGES[:4])
            else:
                url, category = rng.choice(pool)
            page(url, category)
            kind = ("account" if category in ("account", "billing", "invoices") else
                    "shop" if category in ("products", "pricing", "offers") else
                    "help" if category in ("help", "self-service", "contact") else
                    "contract" if category in ("contract", "cancellation") else "other")
            if kind in counts:
                counts[kind] += 1
            counts["offers"] += category == "offers"
            dwell = read(kind)
            if kind in seconds:
                seconds[kind] += dwell / SECOND
            now += dwell
            if rng.random() < 0.08:
                web("search", properties={"q": category or "help"})
                now += think(2, 20)
            # Reading account pages anonymously: a customer logs in within minutes, more often
            # the more (and the longer) they read; from LOGIN_BANNER_FROM on, more readily.
            if (p.customer_id is not None and not p.logged_in and counts["account"]
                    and rng.random() < min(0.9, login_boost * 0.6 * _sigmoid(
                        -3.6 + 0.8 * counts["account"] + 0.4 * math.log1p(seconds["account"] / 60)))):
                self._login(p, web)
                now += think(10, 60)

        abandoned = False
        if mode == "support" or (counts["help"] and rng.random() < 0.3):
            web("form_start", properties={"form": "support"})
            now += think(10, 60)
            abandoned = rng.random() < 0.5 + 0.3 * p.tech_trouble
            if not abandoned:
                web("form_submit", properties={"form": "support"})
                now += think(30, 180)

        cart = False
        if counts["shop"] and mode != "buy":
            # Buying follows the reading (drive), the person (shopper) and, during the
            # promotion, the offers read; many quick product views alone are browsing.
            offers = min(3, counts["offers"]) if promotion else 0
            if rng.random() < _sigmoid(-2.4 + 1.1 * drive + 1.5 * p.shopper):
                web("add_to_cart", properties={"sku": rng.choice(["bb-500", "mob-20", "tv-max"])})
                now += think(10, 90)
                cart = True
            p_buy = _sigmoid(-3.9 + 1.1 * drive + 1.6 * cart + 1.2 * p.shopper + 0.6 * offers
                             - 0.15 * max(0, counts["shop"] - 25) ** 0.5)
            if rng.random() < p_buy:
                if rng.random() < 0.5:  # buys now
                    now += think(30, 600)
                    self._buy(p, web)
                else:  # comes back within hours to buy
                    follow_ups.append((now + rng.randrange(30 * MINUTE, 12 * HOUR), "session", "buy"))
        if mode == "buy":
            now += think(20, 200)
            self._buy(p, web)

        # Failed self-service leads to a contact within hours: more when the help pages were
        # read long (frustration) than when they were many.
        p.contract_reads += counts["contract"]
        if p.customer_id is not None:
            p_contact = _sigmoid(-4.2 + 0.25 * counts["help"] + 0.5 * math.log1p(seconds["help"] / 60)
                                 + 1.8 * abandoned + 0.8 * p.tech_trouble)
            if mode == "account" and p.billing_trouble:
                p_contact += 0.15
            if rng.random() < p_contact:
                reason = "billing" if mode == "account" else rng.choice(["technical", "technical", "other"])
                mood = rng.gauss(-0.35 if p.billing_trouble else 0.1, 0.35)
                sentiment = round(max(-1.0, min(1.0, mood)), 2)
                kind = "callback_requested" if rng.random() < 0.25 else "contact_started"
                follow_ups.append((now + rng.randrange(10 * MINUTE, 14 * HOUR), "contact",
                                   (kind, reason, sentiment)))
            # Reading about contracts and cancellation, in this visit and before: some cancel
            # within days.
            if counts["contract"] and rng.random() < _sigmoid(-4.6 + 0.35 * counts["contract"]
                                                                + 0.5 * math.log1p(p.contract_reads)
                                                                + 3.0 * p.churn_prone):
                follow_ups.append((now + rng.randrange(2 * HOUR, 10 * DAY), "contact",
                                   ("cancellation_requested", "cancellation", -0.3)))

        if p.logged_in and rng.random() < 0.3:
            now += think(5, 60)
            web("logout")
            p.logged_in = p.remembered = False
        return now, follow_ups

    def _login(self, p: _Person, web: Any) -> None:
        p.logged_in = True
        web("login")
        p.remembered = p.rng.random() < 0.5

    def _buy(self, p: _Person, web: Any) -> None:
        if p.customer_id is None:  # a prospect signs up, and is a customer from now on
            p.customer_id = p.prospect_customer_id
            p.logged_in = True
            web("signup")
        elif not p.logged_in:
            self._login(p, web)
        web("purchase", properties={"amount": p.rng.choice([19, 29, 49])})

    def _contact(self, p: _Person, ts: int, kind: str, reason: str, sentiment: float
                 ) -> list[tuple[int, str, Any]]:
        rng = p.rng
        if p.customer_id is None:
            return []
        channel = rng.choice(["phone", "phone", "chat", "email"])
        key = p.customer_id

        def cc(event_type: str, at: int, **extra: Any) -> None:
            p.emit(at, Source.CONTACT_CENTRE, key, {
                "event_id": p.event_id("cc"), "type": event_type, "customer_id": key,
                "channel": channel, "reason": reason, **extra})

        cc(kind, ts, sentiment=sentiment, agent_id=f"agent-{rng.randrange(40)}")
        cc("contact_ended", ts + rng.randrange(3 * MINUTE, 25 * MINUTE), sentiment=sentiment)
        if kind == "cancellation_requested":
            p.cancelled = True
            return []
        follow_ups: list[tuple[int, str, Any]] = []
        # An unhappy billing contact: some cancel within days, more if prone to.
        if reason == "billing" and sentiment < -0.2 and rng.random() < _sigmoid(
                -2.6 + 2.5 * -sentiment + 3.0 * p.churn_prone):
            angrier = round(max(-1.0, sentiment - 0.2), 2)
            follow_ups.append((ts + rng.randrange(6 * HOUR, 12 * DAY), "contact",
                               ("cancellation_requested", "cancellation", angrier)))
        return follow_ups


# More sessions in the day and evening than at night (UTC).
_HOUR_WEIGHTS = [1, 0.5, 0.3, 0.3, 0.3, 0.5, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 4, 3, 2, 1.5]
