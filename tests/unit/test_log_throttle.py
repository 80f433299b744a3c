"""Client-triggered warnings are logged at most once per interval per kind."""

from __future__ import annotations

import logging

import pytest

from orchestrator.runtime.log_throttle import ThrottledWarnings


def test_a_kind_is_logged_once_per_interval_and_then_says_how_many_were_left_out(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    warnings = ThrottledWarnings(logging.getLogger("t"), interval_s=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t"):
        assert warnings.warning("a", "owner %s failed", "x")
        assert not warnings.warning("a", "owner %s failed", "y")
        assert not warnings.warning("a", "owner %s failed", "z")
        assert warnings.warning("b", "other")
        now[0] = 10.0
        assert warnings.warning("a", "owner %s failed", "w")
    assert [r.getMessage() for r in caplog.records] == [
        "owner x failed", "other", "owner w failed (and 2 more like it since the last such warning)"]
