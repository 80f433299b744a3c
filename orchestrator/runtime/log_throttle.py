"""Warnings that a client can trigger at will, logged at most once per interval per kind."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class ThrottledWarnings:
    """``warning(kind, ...)`` logs the first of a kind, then at most one per ``interval_s``,
    saying how many were left out meanwhile. ``kind`` is a fixed name, so memory stays bounded."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object) -> bool:
        """Log ``message % args`` unless ``kind`` was logged within the interval; True if logged."""
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval_s:
            self._left_out[kind] = self._left_out.get(kind, 0) + 1
            return False
        self._last[kind] = now
        left_out = self._left_out.pop(kind, 0)
        if left_out:
            message += " (and %d more like it since the last such warning)"
            args = (*args, left_out)
        self.logger.warning(message, *args)
        return True
