"""Who may read what over HTTP: bearer tokens, their roles, and the decision for one request.

The tokens file has one ``role token`` pair a line; blank lines and lines starting with ``#``
are ignored::

    # contact-centre desktop
    context-reader 3q9V0w2kq8hU4c7Yb1mZlX6tR5eN0aJd
    operator       Zk2d8S0p1L7x4Q9w6E3r5T8y1U0i2O7a

A token is 32 to 512 characters of RFC 6750's token alphabet (letters, digits, ``-._~+/``,
trailing ``=``); the same token may not appear twice. Only SHA-256 digests of the tokens are
kept, and a presented token is compared with every stored digest in constant time.

>>> tokens = parse_tokens("operator " + "a" * 32 + "\\n")
>>> authorize(tokens, "Bearer " + "a" * 32, Scope.OPERATIONS)
<Access.ALLOWED: 'allowed'>
>>> authorize(tokens, None, Scope.CONTEXT)
<Access.NO_TOKEN: 'no_token'>
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    CONTEXT_READER = "context-reader"
    OPERATOR = "operator"


class Scope(StrEnum):
    """What a page gives out: a person's context, or the engine's operation (the rule set)."""

    CONTEXT = "context"
    OPERATIONS = "operations"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.CONTEXT_READER: frozenset({Scope.CONTEXT}),
    Role.OPERATOR: frozenset({Scope.CONTEXT, Scope.OPERATIONS}),
}

MIN_TOKEN_CHARS = 32
MAX_TOKEN_CHARS = 512
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")


class Access(StrEnum):
    ALLOWED = "allowed"
    #: No ``Authorization: Bearer`` header (401).
    NO_TOKEN = "no_token"
    #: A token that is not in the file (401).
    UNKNOWN_TOKEN = "unknown_token"
    #: A known token whose role may not read this page (403).
    FORBIDDEN = "forbidden"


class TokenFileError(ValueError):
    """A tokens file that cannot be used; ``line`` is the 1-based line at fault."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class TokenTable:
    """The digests of the known tokens, each with its role."""

    entries: tuple[tuple[bytes, Role], ...]

    def role_of(self, token: str) -> Role | None:
        """The role of ``token``, or None; every entry is compared, so the time taken does not
        depend on which one (if any) matches."""
        digest = _digest(token)
        found = None
        for stored, role in self.entries:
            if hmac.compare_digest(stored, digest):
                found = role
        return found

    def __len__(self) -> int:
        return len(self.entries)


def parse_tokens(text: str) -> TokenTable:
    """The tokens of a tokens file's text; :class:`TokenFileError` names the first bad line.

    A file without any token is refused: it would lock every client out without saying so.
    """
    roles = {role.value: role for role in Role}
    entries: list[tuple[bytes, Role]] = []
    seen: dict[bytes, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise TokenFileError(number, f"expected '<role> <token>', found {len(parts)} fields")
        role_name, token = parts
        role = roles.get(role_name)
        if role is None:
            # A long first field is likely a token written first: it is not repeated.
            shown = f" {role_name!r}" if len(role_name) <= 20 else ""
            raise TokenFileError(number, f"unknown role{shown} (the first field); roles are "
                                         f"{', '.join(sorted(roles))}")
        if not MIN_TOKEN_CHARS <= len(token) <= MAX_TOKEN_CHARS:
            raise TokenFileError(number, f"a token is {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} "
                                         f"characters, this one {len(token)}")
        if not _TOKEN.match(token):
            raise TokenFileError(number, "a token is letters, digits and - . _ ~ + / "
                                         "(trailing = allowed)")
        digest = _digest(token)
        if digest in seen:
            raise TokenFileError(number, f"the same token as line {seen[digest]}")
        seen[digest] = number
        entries.append((digest, role))
    if not entries:
        raise TokenFileError(max(1, len(text.splitlines())), "no tokens in the file")
    return TokenTable(tuple(entries))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def authorize(tokens: TokenTable | None, authorization: str | None, scope: Scope) -> Access:
    """May the bearer of ``authorization`` read a page of ``scope``? ``tokens`` None: every
    request may (a worker serving only its loopback interface without a tokens file)."""
    if tokens is None:
        return Access.ALLOWED
    token = bearer_token(authorization)
    if token is None:
        return Access.NO_TOKEN
    role = tokens.role_of(token)
    if role is None:
        return Access.UNKNOWN_TOKEN
    return Access.ALLOWED if scope in ROLE_SCOPES[role] else Access.FORBIDDEN
