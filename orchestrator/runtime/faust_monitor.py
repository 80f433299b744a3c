"""Faust's main sensor, without the bookkeeping it does for every record.

Faust calls its ``Monitor`` for every record fetched, every stream event (in and out), every
table read and write and every record sent, and the default one keeps running averages, deques
of latencies and per-topic counters on each call: about 2 % of a worker's CPU per record under
load (``docs/hot-path.md``). Nothing here reads those figures -- the worker's own Prometheus
metrics (``runtime/metrics.py``) say what operators need -- so :class:`LightMonitor` keeps only
what Faust itself or a rebalance reads (committed offsets, rebalance and commit latencies, which
are rare) and turns the per-record hooks into counters or nothing. It is set with Faust's
documented ``Monitor`` setting.
"""

from __future__ import annotations

from typing import Any

from faust.sensors import Monitor


class LightMonitor(Monitor):
    """Faust's ``Monitor`` with the per-record hooks cut down to counters."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        self.messages_received_total += 1

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.events_total += 1

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        pass

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        pass

    def on_table_get(self, table: Any, key: Any) -> None:
        pass

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        pass

    def on_table_del(self, table: Any, key: Any) -> None:
        pass

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int,
                          valsize: int) -> Any:
        self.messages_sent += 1
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        pass
