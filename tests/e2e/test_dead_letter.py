"""A malformed record goes to the dead-letter topic; the worker carries on."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Traffic, WorkerProcess


async def test_malformed_record_is_dead_lettered_with_its_origin_and_the_next_one_acted_on(
        worker: WorkerProcess, traffic: Traffic, tmp_path: Path) -> None:
    worker.start(tmp_path / "data")
    settings = worker.settings
    bad = await traffic.send_raw(settings.topic_clickstream, b"v-200", b'{"event_id": "x", ')
    wrong_type = await traffic.send(settings.topic_clickstream, "v-200", event_id="y",
                                    type="page_view", visitor_id=200)
    await traffic.page_view("good-1", "v-200", "/account/settings", "account", customer_id="c-200")

    not_json = await traffic.wait_for(settings.topic_dead_letter,
                                      lambda d: d["error"] == "not_json")
    assert not_json["source"]["topic"] == settings.topic_clickstream
    assert (not_json["source"]["partition"], not_json["source"]["offset"]) == (bad.partition,
                                                                               bad.offset)
    assert not_json["value"] == '{"event_id": "x", '
    assert not_json["key"] == "v-200"
    schema = await traffic.wait_for(settings.topic_dead_letter, lambda d: d["error"] == "schema")
    assert schema["source"]["offset"] == wrong_type.offset
    assert "visitor_id" in schema["reason"]

    link = await traffic.wait_for(settings.action_topic("web"),
                                  lambda a: a["trigger_event_id"] == "good-1")
    assert link["action"] == "direct_link"
