"""Signed requests between workers and what a context request may do (orchestrator/core/forwarding.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.forwarding import MAX_CLOCK_SKEW_S, ContextRequest, sign, verify

SECRET = b"k" * 32
NOW = 1_800_000_000
ids = st.text(min_size=1, max_size=40).filter(lambda text: "\0" not in text)
people = st.one_of(st.none(), ids)
kinds = st.sampled_from(["context", "identity"])


@given(kinds, ids, people, st.integers(-MAX_CLOCK_SKEW_S, MAX_CLOCK_SKEW_S))
def test_a_signature_verifies_for_exactly_its_request_within_the_skew(
        kind: str, requested: str, person: str | None, skew: int) -> None:
    header = sign(SECRET, kind, requested, person, now_s=NOW)
    assert verify(SECRET, header, kind, requested, person, now_s=NOW + skew)


@given(kinds, ids, people, kinds, ids, people)
def test_a_signature_does_not_verify_for_another_request(
        kind: str, requested: str, person: str | None,
        other_kind: str, other_requested: str, other_person: str | None) -> None:
    header = sign(SECRET, kind, requested, person, now_s=NOW)
    same = (kind, requested, person or "") == (other_kind, other_requested, other_person or "")
    assert verify(SECRET, header, other_kind, other_requested, other_person, now_s=NOW) == same


def test_a_signature_with_another_secret_or_too_old_or_too_new_does_not_verify() -> None:
    header = sign(SECRET, "context", "v-1", "c-1", now_s=NOW)
    assert not verify(b"j" * 32, header, "context", "v-1", "c-1", now_s=NOW)
    assert not verify(SECRET, header, "context", "v-1", "c-1", now_s=NOW + MAX_CLOCK_SKEW_S + 1)
    assert not verify(SECRET, header, "context", "v-1", "c-1", now_s=NOW - MAX_CLOCK_SKEW_S - 1)


@given(st.one_of(st.none(), st.text(max_size=120)))
def test_any_header_value_is_refused_without_an_exception(header: str | None) -> None:
    assert not verify(SECRET, header, "context", "v-1", "c-1", now_s=NOW)


@pytest.mark.parametrize("forwarded", [False, True])
def test_a_context_request_honours_the_person_only_when_forwarded_and_then_never_forwards(
        forwarded: bool) -> None:
    request = ContextRequest.of("v-1", "c-1", forwarded=forwarded)
    assert request.person_id == ("c-1" if forwarded else None)
    assert request.may_forward is not forwarded


def test_a_clients_request_without_a_person_resolves_here() -> None:
    assert ContextRequest.of("v-1", None, forwarded=False) == ContextRequest("v-1", None, True)
