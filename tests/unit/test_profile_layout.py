"""The stored layout: profiles written before the profile was split into named types decode to
the same person, and encode back to the same bytes."""

from __future__ import annotations

from pathlib import Path

import orjson

from orchestrator.core.context import context_record
from orchestrator.core.profile import Consent, Outcome, Register, queries
from orchestrator.core.scoring.features import extract_features
from orchestrator.core.stage import journey_stage
from orchestrator.runtime.stores import decode_profile, encode_profile

DATA = Path(__file__).parent / "data"
#: A customer's profile as the previous layout-compatible version wrote it (every part set:
#: login, consent, sessions beyond the kept ones, feedback before its action, scores, snapshots).
STORED = (DATA / "profile_layout_v1.json").read_bytes()
#: What that version read from it: context record, features, stage and the derived views.
READ_THEN = orjson.loads((DATA / "profile_layout_v1.expected.json").read_bytes())


def test_a_stored_profile_of_the_earlier_version_encodes_back_to_the_same_bytes() -> None:
    assert encode_profile(decode_profile(STORED)) == STORED


def test_a_stored_profile_of_the_earlier_version_reads_as_it_did() -> None:
    profile = decode_profile(STORED)
    assert context_record(profile, 0) == READ_THEN["context"]
    read_then = READ_THEN["features"]  # features added since are appended (FEATURE_NAMES)
    assert extract_features(profile, None, profile.last_seen_ts)[:len(read_then)] == read_then
    assert journey_stage(profile) == READ_THEN["stage"]
    derived = {name: getattr(profile, name) for name in (
        "logged_in", "visitor_id", "sessions", "session_id", "session_started_ts",
        "session_topic_views")}
    assert derived == {name: READ_THEN[name] for name in derived}


def test_positional_parts_of_the_layout_decode_to_named_types() -> None:
    raw = orjson.loads(STORED)
    profile = decode_profile(STORED)
    assert profile.login == Register(raw["login"][0], raw["login"][1], True)
    assert profile.consent == Register(*raw["consent_at"], Consent(service=True, marketing=True))
    assert profile.early_outcomes == {"a-early": Outcome("shown", raw["early_outcomes"]["a-early"][1])}
    start, last, views = raw["session_log"]["s7"]
    session = profile.session_log.by_key["s7"]
    assert (session.start, session.last, session.views) == (start, last, views)
    assert profile.sessions_before == raw["sessions_before"]
    assert queries.consents_to(profile, "marketing")


def test_a_profile_that_never_gave_consent_reads_the_default_and_writes_the_old_fields() -> None:
    raw = orjson.loads(STORED) | {"consent": {"service": True, "marketing": False}, "consent_at": None}
    profile = decode_profile(orjson.dumps(raw))
    assert profile.consent is None
    assert queries.consent(profile) == Consent(service=True, marketing=False)
    assert orjson.loads(encode_profile(profile))["consent"] == {"service": True, "marketing": False}
