"""The HTTP side of idempotency keys: the header's rules and the replay marker."""

from __future__ import annotations

from typing import Annotated, Any, Awaitable, Callable

from fastapi import Header, Response

from backend.context import Principal
from backend.idempotency.service import IdempotentRequest, idempotent_request

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"
IDEMPOTENCY_KEY_DESCRIPTION = (
    "Optional, 1-255 visible ASCII characters (a UUID is a good choice), unique per new request. A repeat with the "
    "same key and body within 24 h answers the first answer again (`Idempotent-Replayed: true`) and creates "
    "nothing; the same key with another body is a 422. Keys are private to the account or API key that sent them."
)

# The `Idempotency-Key` request header of an intake endpoint (the same declaration for every one of them).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description=IDEMPOTENCY_KEY_DESCRIPTION,
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"


async def answer_idempotently(
    response: Response,
    *,
    endpoint: str,
    principal: Principal,
    key: str | None,
    body: Any,
    create: Callable[[IdempotentRequest | None], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Run `create` with the request's idempotency record and mark a replayed answer with a header."""
    answer = await create(idempotent_request(endpoint=endpoint, principal=principal, key=key, body=body))
    if answer.pop("replayed", False):
        response.headers[REPLAYED_HEADER] = "true"
    return answer
