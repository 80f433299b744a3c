"""A Quix Streams peer of the engine's first decision, for benchmarks/event_to_action.py.

It reads the clickstream topic (JSON values, key = visitor id), keeps each visitor's state in
Quix Streams' RocksDB state store (with its changelog topic), and makes the decision of the
rule ``self-service-login-prompt`` (rules/web.yaml): an anonymous visitor (no ``customer_id``)
whose page view is the 3rd page of a self-service category in the same session gets one
``login_prompt``, at most once per visitor in 30 minutes (by event time). The action goes to the
output topic, keyed by visitor id:
``{"action_id", "channel": "web", "action": "login_prompt", "person_id", "trigger_event_id",
"trigger_ts", "decided_ts"}``. ``trigger_ts`` is the trigger record's Kafka timestamp, as in the
engine's actions.

Only that decision: no identity across devices, no scoring, no other rule. Like the engine, a
visitor counts as logged in from a record with a ``customer_id`` until a ``logout``, a session is
the record's ``session_id`` (or a fixed 30-minute window of event time without one), and a
``consent_updated`` record with ``consent.service`` false stops the prompt.

A small HTTP server (``--port``) answers ``GET /metrics`` with the records processed so far
(``quix_peer_records_total``), which the benchmark reads as the handled rate.

    python benchmarks/peers/quix_peer.py --bootstrap 127.0.0.1:9092 --input clickstream-x \\
        --output actions-x --group quix-peer-x --state-dir var/quix-x --port 6210
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from quixstreams import Application, State

SELF_SERVICE = frozenset({"billing", "invoices", "account", "contract", "moving", "self-service"})
PAGES_BEFORE_PROMPT = 3
COOLDOWN_MS = 30 * 60 * 1000
SESSION_WINDOW_MS = 30 * 60 * 1000
SESSIONS_KEPT = 6
_ACTIONS = uuid.UUID("0b4c3d7e-2f61-4a8e-b6b1-5d9e7a2c4f10")


def visitor_step(visitor: dict[str, Any], event: dict[str, Any], kafka_ts: int,
                 now_ms: int) -> dict[str, Any] | None:
    """Apply ``event`` to a visitor's state (changed in place) and return the action, if any.

    >>> v = {}
    >>> page = {"type": "page_view", "visitor_id": "v1", "session_id": "s1",
    ...         "page": {"url": "/billing/faq", "category": "billing"}}
    >>> [visitor_step(v, dict(page, event_id=f"e{n}", ts=n), n, n) is not None for n in range(4)]
    [False, False, True, False]
    """
    ts = event.get("ts")
    ts = ts if isinstance(ts, int) else kafka_ts
    kind = event.get("type")
    if kind == "logout":
        visitor["logged_in"] = False
    elif event.get("customer_id"):
        visitor["logged_in"] = True
    consent = event.get("consent")
    if kind == "consent_updated" and isinstance(consent, dict):
        visitor["service_consent"] = bool(consent.get("service"))
    page = event.get("page") if isinstance(event.get("page"), dict) else {}
    if kind != "page_view" or page.get("category") not in SELF_SERVICE:
        return None
    session = event.get("session_id") or f"window-{ts // SESSION_WINDOW_MS}"
    sessions: dict[str, list[int]] = visitor.setdefault("sessions", {})
    count, last_ts = sessions.get(session, (0, ts))
    sessions[session] = [count + 1, max(ts, last_ts)]
    if len(sessions) > SESSIONS_KEPT:
        del sessions[min(sessions, key=lambda s: sessions[s][1])]
    if (visitor.get("logged_in") or not visitor.get("service_consent", True)
            or count + 1 < PAGES_BEFORE_PROMPT):
        return None
    last = visitor.get("last_prompt_ts")
    if last is not None and ts - last < COOLDOWN_MS:
        return None
    visitor["last_prompt_ts"] = ts
    trigger = str(event.get("event_id"))
    return {"action_id": str(uuid.uuid5(_ACTIONS, f"{trigger}\x1fweb\x1flogin_prompt")),
            "channel": "web", "action": "login_prompt", "person_id": event.get("visitor_id"),
            "trigger_event_id": trigger, "trigger_ts": kafka_ts, "decided_ts": now_ms}


def decide(value: Any, key: Any, timestamp: int, headers: Any, state: State) -> dict | None:
    """The stateful step: the visitor's state lives in the store under the message key."""
    if not isinstance(value, dict):
        return None
    visitor = state.get("visitor") or {}
    action = visitor_step(visitor, value, timestamp, time.time_ns() // 1_000_000)
    state.set("visitor", visitor)
    return action


class Processed:
    """Records processed so far (Application's on_message_processed callback)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, topic: str, partition: int, offset: int) -> None:
        self.count += 1


def serve_metrics(port: int, processed: Processed) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404)
                return
            body = f"quix_peer_records_total {processed.count}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--input", required=True, help="clickstream topic")
    parser.add_argument("--output", required=True, help="action topic")
    parser.add_argument("--group", required=True, help="consumer group")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--port", type=int, required=True, help="GET /metrics")
    parser.add_argument("--linger-ms", type=float, default=0.0, help="producer linger.ms")
    args = parser.parse_args()

    processed = Processed()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        producer_extra_config={"linger.ms": args.linger_ms},
        on_message_processed=processed,
        loglevel="WARNING",
    )
    clicks = app.topic(args.input, key_deserializer="str", value_deserializer="json")
    actions = app.topic(args.output, key_serializer="str", value_serializer="json")
    sdf = app.dataframe(clicks)
    sdf = sdf.apply(decide, stateful=True, metadata=True)
    sdf = sdf.filter(lambda action: action is not None)
    sdf.to_topic(actions)
    server = serve_metrics(args.port, processed)
    try:
        app.run()  # until SIGTERM or Ctrl-C
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
