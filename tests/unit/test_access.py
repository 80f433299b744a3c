"""Tokens file, roles and the decision for one request (orchestrator/core/access.py)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.access import (
    MIN_TOKEN_CHARS,
    Access,
    Role,
    Scope,
    TokenFileError,
    authorize,
    bearer_token,
    parse_tokens,
)

READER, OPERATOR = "r" * 32, "o" * 32
TOKENS = parse_tokens(f"context-reader {READER}\noperator {OPERATOR}\n")
TOKEN_CHARS = string.ascii_letters + string.digits + "-._~+/"
tokens = st.text(TOKEN_CHARS, min_size=MIN_TOKEN_CHARS, max_size=80)


def test_comments_blank_lines_and_spacing_are_ignored() -> None:
    table = parse_tokens(f"# clients\n\n   context-reader\t{READER}  \n# end\n")
    assert len(table) == 1
    assert table.role_of(READER) is Role.CONTEXT_READER


@pytest.mark.parametrize(("text", "line", "says"), [
    (f"reader {READER}\n", 1, "unknown role 'reader'"),
    ("# a\noperator\n", 2, "expected '<role> <token>', found 1 fields"),
    (f"operator {OPERATOR} extra\n", 1, "found 3 fields"),
    ("operator short\n", 1, "this one 5"),
    (f"operator {'é' * 32}\n", 1, "letters, digits"),
    (f"operator {OPERATOR}\n\ncontext-reader {OPERATOR}\n", 3, "the same token as line 1"),
    ("# only comments\n", 1, "no tokens"),
    ("", 1, "no tokens"),
])
def test_a_bad_file_is_refused_naming_the_line(text: str, line: int, says: str) -> None:
    with pytest.raises(TokenFileError) as error:
        parse_tokens(text)
    assert error.value.line == line
    assert str(error.value).startswith(f"line {line}: ")
    assert says in str(error.value)


@pytest.mark.parametrize("line", ["operator " + "p" * 31 + "!", "p" * 40 + " operator"])
def test_a_refused_token_is_not_repeated_in_the_error(line: str) -> None:
    with pytest.raises(TokenFileError) as error:
        parse_tokens(line + "\n")
    assert "pppppppp" not in str(error.value)


@given(st.lists(st.tuples(st.sampled_from(list(Role)), tokens), min_size=1, max_size=8,
                unique_by=lambda entry: entry[1]), tokens)
def test_every_token_of_a_file_has_its_role_and_no_other_token_has_one(
        entries: list[tuple[Role, str]], other: str) -> None:
    table = parse_tokens("".join(f"{role.value} {token}\n" for role, token in entries))
    for role, token in entries:
        assert table.role_of(token) is role
    if other not in {token for _, token in entries}:
        assert table.role_of(other) is None


def test_only_digests_are_kept() -> None:
    assert all(READER.encode() not in digest and len(digest) == 32 for digest, _ in TOKENS.entries)


@pytest.mark.parametrize(("header", "token"), [
    (f"Bearer {READER}", READER), (f"bearer   {READER} ", READER), (None, None), ("", None),
    ("Bearer", None), ("Bearer  ", None), (f"Basic {READER}", None), (READER, None),
])
def test_the_token_is_taken_from_a_bearer_header_only(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize(("header", "scope", "access"), [
    (None, Scope.CONTEXT, Access.NO_TOKEN),
    ("Basic abc", Scope.CONTEXT, Access.NO_TOKEN),
    ("Bearer " + "x" * 32, Scope.CONTEXT, Access.UNKNOWN_TOKEN),
    (f"Bearer {READER}", Scope.CONTEXT, Access.ALLOWED),
    (f"Bearer {READER}", Scope.OPERATIONS, Access.FORBIDDEN),
    (f"Bearer {OPERATOR}", Scope.CONTEXT, Access.ALLOWED),
    (f"Bearer {OPERATOR}", Scope.OPERATIONS, Access.ALLOWED),
])
def test_roles_decide_what_a_token_may_read(header: str | None, scope: Scope, access: Access) -> None:
    assert authorize(TOKENS, header, scope) is access


@given(st.one_of(st.none(), st.text(max_size=100)), st.sampled_from(list(Scope)))
def test_without_a_tokens_file_everything_is_allowed(header: str | None, scope: Scope) -> None:
    assert authorize(None, header, scope) is Access.ALLOWED


@given(st.text(max_size=200))
def test_any_header_gets_a_decision_and_only_a_known_token_is_allowed(header: str) -> None:
    access = authorize(TOKENS, header, Scope.CONTEXT)
    assert (access is Access.ALLOWED) == (bearer_token(header) in {READER, OPERATOR})
