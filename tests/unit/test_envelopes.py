"""Records of the person-events topic: what one worker hands to the owner of a person."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.envelopes import (
    Carried,
    EnvelopeError,
    Forwarded,
    decode_envelope,
    encode_envelope,
)
from orchestrator.core.events import Source

ids = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=20)
positions = st.tuples(st.integers(1, 5), ids, st.integers(0, 2**41), st.integers(0, 2**41),
                      st.integers(0, 2**41)).map(list)
journey_states = st.fixed_dictionaries({
    "active": st.dictionaries(ids, positions, max_size=3),
    "past": st.dictionaries(ids, st.tuples(st.integers(0, 9), st.integers(0, 2**41)).map(list),
                            max_size=3)})


@given(source=st.sampled_from(list(Source)), key=st.none() | ids, kafka_ts=st.integers(0, 2**41),
       value=ids, visitor=ids, journeys=st.none() | journey_states)
def test_a_carry_decodes_to_what_was_encoded(source: Source, key: str | None, kafka_ts: int,
                                             value: str, visitor: str,
                                             journeys: dict[str, Any] | None) -> None:
    carried = Carried(source, key.encode() if key is not None else None, kafka_ts, value.encode(),
                      visitor, {"person_id": visitor}, journeys)
    assert decode_envelope(encode_envelope(carried)) == carried


def test_a_carry_without_journeys_reads_as_none() -> None:
    # What a worker without journeys (or of an earlier version) sends.
    raw = orjson.dumps({"kind": "carry", "source": "clickstream", "key": "v1", "kafka_ts": 1,
                        "value": "{}", "visitor_id": "v1", "profile": None})
    carried = decode_envelope(raw)
    assert isinstance(carried, Carried) and carried.journeys is None


POSITION = "must be [entry, step, entered, reached, due]"


@pytest.mark.parametrize(("journeys", "reason"), [
    ([], "must be an object of 'active' and 'past'"),
    ({"active": {}, "later": {}}, "must be an object of 'active' and 'past'"),
    ({"active": []}, "'active' and 'past' must be objects"),
    ({"active": {"cart": [1, "pause", 10, 10]}}, f"active 'cart' {POSITION}"),
    ({"active": {"cart": [1, 2, 10, 10, 0]}}, f"active 'cart' {POSITION}"),
    ({"past": {"cart": [1, True]}}, "past 'cart' must be [entries, last exit]"),
])
def test_a_malformed_carried_journey_state_is_refused_with_what_is_wrong(journeys: Any,
                                                                         reason: str) -> None:
    raw = orjson.dumps({"kind": "carry", "source": "clickstream", "key": "v1", "kafka_ts": 1,
                        "value": "{}", "visitor_id": "v1", "profile": None, "journeys": journeys})
    with pytest.raises(EnvelopeError) as refused:
        decode_envelope(raw)
    assert str(refused.value) == f"carry envelope: 'journeys' {reason}"


def test_a_forwarded_record_carries_no_journeys() -> None:
    forwarded = Forwarded(Source.CLICKSTREAM, b"v1", 1, b"{}")
    assert "journeys" not in orjson.loads(encode_envelope(forwarded))
