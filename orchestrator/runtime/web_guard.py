"""The answer to a request whose bearer may not read the page (401/403), or None."""

from __future__ import annotations

from faust.web import Request, Response, View

from orchestrator.core.access import Access, Scope, TokenTable, authorize

_REALM = 'Bearer realm="orchestrator"'
_REFUSALS: dict[Access, tuple[int, str, str]] = {
    Access.NO_TOKEN: (401, "a bearer token is required (Authorization: Bearer <token>)", _REALM),
    Access.UNKNOWN_TOKEN: (401, "the bearer token is not valid",
                           f'{_REALM}, error="invalid_token"'),
    Access.FORBIDDEN: (403, "this token's role may not read this page",
                       f'{_REALM}, error="insufficient_scope"'),
}


def refusal(view: View, tokens: TokenTable | None, request: Request, scope: Scope) -> Response | None:
    """None when the request's token allows ``scope``; otherwise the 401 or 403 to answer."""
    access = authorize(tokens, request.headers.get("Authorization"), scope)
    if access is Access.ALLOWED:
        return None
    status, reason, challenge = _REFUSALS[access]
    return view.json({"error": reason}, status=status, headers={"WWW-Authenticate": challenge})
