"""Requests one worker sends another on a client's behalf: signed, and never passed on again.

A worker that does not own a person asks the worker that does, with a header that signs what it
asks for (HMAC-SHA256 over the kind of request, the ids and the time, with the secret all
workers of the app share). The receiving worker honours a signed request's internal fields (the
person an id was already resolved to) and answers it from its own partitions only: a request is
forwarded at most once, so two workers that disagree about who owns a partition cannot bounce
it between them. An unsigned or badly signed request is a client's, whatever headers it carries.

>>> secret = b"s" * 32
>>> header = sign(secret, "context", "v-1", "c-1", now_s=1_700_000_000)
>>> verify(secret, header, "context", "v-1", "c-1", now_s=1_700_000_030)
True
>>> verify(secret, header, "context", "v-1", "c-2", now_s=1_700_000_030)
False
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

#: The header a worker's request to another worker carries.
HEADER = "X-Orchestrator-Forwarded"
#: How far the signing worker's clock may be from the receiver's (seconds, either way).
MAX_CLOCK_SKEW_S = 60


def _mac(secret: bytes, kind: str, requested_id: str, person_id: str | None, ts: int) -> str:
    # Fields are joined by NUL, which no id may contain (core/events), so no two field tuples
    # give the same message.
    message = "\0".join(("v1", kind, requested_id, person_id or "", str(ts))).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, kind: str, requested_id: str, person_id: str | None, *, now_s: int) -> str:
    """The header value for a request of ``kind`` about ``requested_id`` (and ``person_id``)."""
    return f"{now_s}.{_mac(secret, kind, requested_id, person_id, now_s)}"


def verify(secret: bytes, header: str | None, kind: str, requested_id: str, person_id: str | None,
           *, now_s: int) -> bool:
    """True when ``header`` is a signature by a holder of ``secret`` of exactly this request,
    made within :data:`MAX_CLOCK_SKEW_S` of ``now_s``."""
    if not header:
        return False
    ts_text, _, mac = header.partition(".")
    # isdigit() alone accepts digits int() refuses (e.g. superscripts): ASCII digits only.
    if not (ts_text.isascii() and ts_text.isdigit()) or len(ts_text) > 12 \
            or abs(now_s - int(ts_text)) > MAX_CLOCK_SKEW_S:
        return False
    return hmac.compare_digest(mac.encode(), _mac(secret, kind, requested_id, person_id,
                                                  int(ts_text)).encode())


@dataclass(frozen=True)
class ContextRequest:
    """What a ``GET /context/{id}`` asks this worker to do.

    ``person_id``: the person ``requested_id`` was already resolved to (None: resolve it here);
    ``may_forward``: whether a part owned by another worker may be asked of it.
    """

    requested_id: str
    person_id: str | None
    may_forward: bool

    @classmethod
    def of(cls, requested_id: str, query_person: str | None, forwarded: bool) -> ContextRequest:
        """``forwarded``: the request carried a valid worker signature. A client's ``person``
        query parameter is ignored; a forwarded request is answered here or not at all."""
        if forwarded:
            return cls(requested_id, query_person, may_forward=False)
        return cls(requested_id, None, may_forward=True)
