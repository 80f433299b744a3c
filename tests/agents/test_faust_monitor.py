"""The worker's Faust monitor: counts records, keeps no per-record latencies."""

from __future__ import annotations

from faust.types import TP

from orchestrator.runtime.app import Engine
from orchestrator.runtime.faust_monitor import LightMonitor


def test_the_app_is_built_with_the_light_monitor(engine: Engine) -> None:
    assert isinstance(engine.app.monitor, LightMonitor)


def test_the_per_record_hooks_count_and_keep_no_latencies(engine: Engine) -> None:
    monitor = engine.app.monitor
    tp = TP("clickstream", 0)
    for offset in range(3):
        monitor.on_message_in(tp, offset, object())
        state = monitor.on_stream_event_in(tp, offset, object(), object())
        monitor.on_stream_event_out(tp, offset, object(), object(), state)
        monitor.on_message_out(tp, offset, object())
        monitor.on_send_completed(object(), monitor.on_send_initiated(object(), "t", object(), 1, 1),
                                  object())
    assert (monitor.messages_received_total, monitor.events_total, monitor.messages_sent) == (3, 3, 3)
    # Faust's own Monitor keeps a latency per event and per send, and a read offset per record.
    assert not monitor.events_runtime
    assert not monitor.send_latency
    assert not monitor.tp_read_offsets
