"""The stored layout of the pending moments: each moment once, the earlier layout still read, and
the merge a join (commutative, associative, idempotent) whatever the layouts it meets."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.profile.pending import (
    entries,
    from_entries,
    join,
    moments_of,
    outcomes_seen_of,
    pending_of,
)
from orchestrator.runtime.stores import decode_profile, encode_profile

T0 = 1_780_000_000_000
STORED_V1 = (Path(__file__).parent / "data" / "profile_layout_v1.json").read_bytes()

Entry = tuple[str, int, str]

entry = st.tuples(st.sampled_from(["churn_risk", "contact_need", "login_propensity", "buy"]),
                  st.sampled_from([T0, T0 + 1, T0 + 60_000]),
                  st.sampled_from(["", "3,120", "3,120,14,693", "0,1"]))
#: entries, each with the weight recorded when its outcome was seen (None: not seen)
entry_maps = st.dictionaries(entry, st.one_of(st.none(), st.sampled_from([1.0, 2.5, 8.0])),
                             max_size=12)
Found = dict[Entry, float | None]


def layout_1(found: Found) -> dict:
    """The earlier layout of the same entries (it had no outcome seen: the flags are dropped)."""
    out: dict = {}
    for name, ts, packed in sorted(found):
        out.setdefault(name, []).append([ts, [int(p) for p in packed.split(",")] if packed else []])
    return out


def unseen(found: Found) -> Found:
    return dict.fromkeys(found)


def either_layout(data: st.DataObject, found: Found) -> tuple[dict, Found]:
    """The entries in layout 1, in layout 2, or split between both (an older worker wrote some),
    and what that holds (layout 1 knows of no outcome seen)."""
    kind = data.draw(st.sampled_from(["1", "2", "mixed"]))
    if kind == "1":
        return layout_1(found), unseen(found)
    if kind == "2":
        return from_entries(found), found
    older = {e for e in found if data.draw(st.booleans())}
    newer = {e: seen for e, seen in found.items() if e not in older}
    return {**layout_1(dict.fromkeys(older)), **from_entries(newer)}, {
        **dict.fromkeys(older), **newer}


@given(entry_maps)
def test_the_layout_holds_exactly_the_entries_it_was_made_of(found: Found) -> None:
    assert entries(from_entries(found)) == found
    assert entries(layout_1(found)) == unseen(found)


@given(entry_maps, st.data())
def test_reading_the_earlier_layout_converts_it_in_place_to_the_same_entries(
        found: Found, data: st.DataObject) -> None:
    pending, holds = either_layout(data, found)
    laid = moments_of(pending)
    assert entries(pending) == holds
    if not found:
        assert laid is None and pending == {}
        return
    assert set(pending) == {"_intents", "_moments"}
    _table, moments = laid
    keys = [(m[0], m[2]) for m in moments]
    assert keys == sorted(set(keys))  # each moment once, in order of (ts, packed)
    assert all(m[1] for m in moments)


@given(entry_maps, entry_maps, st.data())
def test_merge_is_the_union_commutative_and_in_one_form_whatever_the_layouts(
        a: Found, b: Found, data: st.DataObject) -> None:
    (one, holds_a), (other, holds_b) = either_layout(data, a), either_layout(data, b)
    one_way, other_way = copy.deepcopy(one), copy.deepcopy(other)
    join(one_way, other)
    join(other_way, one)
    assert one_way == other_way  # written the same, not only equal in content
    def either(entry: Entry) -> float | None:
        seen = [w for w in (holds_a.get(entry), holds_b.get(entry)) if w is not None]
        return max(seen) if seen else None

    union = {e: either(e) for e in holds_a.keys() | holds_b.keys()}
    assert entries(one_way) == union  # an outcome seen in either is seen


@given(entry_maps, entry_maps, entry_maps)
def test_merge_is_associative_and_idempotent(a: Found, b: Found,
                                             c: Found) -> None:
    left = from_entries(a)
    join(left, from_entries(b))
    join(left, from_entries(c))
    right = from_entries(b)
    join(right, from_entries(c))
    joined = from_entries(a)
    join(joined, right)
    assert left == joined
    again = copy.deepcopy(left)
    join(again, from_entries(b))
    assert again == left


def test_a_moment_kept_by_several_intents_is_stored_once_with_the_outcomes_seen() -> None:
    pending = layout_1({("churn_risk", T0, "3,120"): None, ("contact_need", T0, "3,120"): None,
                        ("churn_risk", T0 + 1, "0,1"): None})
    moments_of(pending)
    assert pending == {"_intents": ["churn_risk", "contact_need"],
                       "_moments": [[T0, 0b11, "3,120"], [T0 + 1, 0b01, "0,1"]]}
    assert pending_of(pending, "contact_need") == [(T0, "3,120")]
    seen = from_entries({("churn_risk", T0, "3,120"): None, ("contact_need", T0, "3,120"): 2.5})
    assert seen["_moments"] == [[T0, 0b11, "3,120", 0b10, [2.5]]]
    assert outcomes_seen_of(seen, "contact_need") == [T0] and outcomes_seen_of(seen, "churn_risk") == []


def test_a_stored_profile_of_the_earlier_layout_reads_its_moments_and_stores_them_once() -> None:
    profile = decode_profile(STORED_V1)
    before = entries(profile.pending)
    raw_pending = orjson.loads(STORED_V1)["pending"]
    assert {name for name, _, _ in before} == set(raw_pending)
    moments_of(profile.pending)
    assert entries(profile.pending) == before
    assert len(profile.pending["_moments"]) == len({(ts, packed) for _, ts, packed in before})
    stored = encode_profile(profile)
    assert len(stored) < len(STORED_V1)
    assert entries(decode_profile(stored).pending) == before
