"""Schemathesis hooks of the whole-API fuzz run (loaded through SCHEMATHESIS_HOOKS by test_api_fuzz.py).

- Every request is sent as the run's caller: a person's bearer token or an API key (PRS_FUZZ_AUTH_HEADER /
  PRS_FUZZ_AUTH_VALUE); generated credentials are dropped, since the attack suite covers bad credentials.
- Logout and refresh run on sessions of their own, opened for each call, so they never end the run's session.
- The run's own accounts are never the target of a user change (a fuzzer that disables itself tests nothing).
- Check `refused_outside_the_role`: an operation the caller may not use answers 401/403, never 2xx.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import schemathesis

BASE_URL = os.environ.get("PRS_FUZZ_BASE_URL", "")
AUTH_HEADER = os.environ.get("PRS_FUZZ_AUTH_HEADER", "Authorization")
AUTH_VALUE = os.environ.get("PRS_FUZZ_AUTH_VALUE", "")
SESSION_USERNAME = os.environ.get("PRS_FUZZ_SESSION_USERNAME", "")
SESSION_PASSWORD = os.environ.get("PRS_FUZZ_SESSION_PASSWORD", "")
PROTECTED_USER_IDS = {int(v) for v in os.environ.get("PRS_FUZZ_PROTECTED_USER_IDS", "").split(",") if v}
SCRATCH_USER_ID = int(os.environ.get("PRS_FUZZ_SCRATCH_USER_ID", "0") or 0)
FORBIDDEN = {tuple(op) for op in json.loads(os.environ.get("PRS_FUZZ_FORBIDDEN", "[]"))}
CREDENTIAL_HEADERS = ("authorization", "x-api-key")
# Answers given before the role is known: an unparsable JSON body (400), a body or header block over the
# limits (413, 431); none of them is a 2xx, and none reveals anything about the operation.
PRE_AUTH_REFUSALS = {400, 413, 431}


def _fresh_session() -> dict[str, Any]:
    """Sign in as the session account and return the token pair."""
    reply = httpx.post(
        f"{BASE_URL}/api/v1/auth/token", timeout=30, data={"username": SESSION_USERNAME, "password": SESSION_PASSWORD}
    )
    reply.raise_for_status()
    return reply.json()


def _is_positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is None or not meta.generation.mode.is_negative


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Send the run's credentials; give logout and refresh sessions of their own; spare the run's accounts."""
    path = case.operation.path
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in CREDENTIAL_HEADERS}
    if path == "/api/v1/auth/logout":
        headers["Authorization"] = f"Bearer {_fresh_session()['access_token']}"
    elif path == "/api/v1/auth/refresh":
        if _is_positive(case) and isinstance(case.body, dict):
            case.body = {**case.body, "refresh_token": _fresh_session()["refresh_token"]}
    elif path != "/api/v1/auth/token":
        headers[AUTH_HEADER] = AUTH_VALUE
    case.headers = headers
    user_id = (case.path_parameters or {}).get("user_id")
    if isinstance(user_id, int) and user_id in PROTECTED_USER_IDS:
        case.path_parameters = {**case.path_parameters, "user_id": SCRATCH_USER_ID}


@schemathesis.check
def refused_outside_the_role(ctx: Any, response: Any, case: Any) -> bool | None:
    """An operation outside the caller's role or permissions is refused with 401 or 403, never served."""
    operation = (case.operation.method.upper(), case.operation.path)
    sent = str(getattr(case, "method", operation[0]) or operation[0]).upper()
    # Another method on the same path (the coverage phase tries TRACE and the like) never reaches a handler:
    # the router answers 405 before any role is considered.
    if operation not in FORBIDDEN or sent != operation[0]:
        return None
    status = response.status_code
    if status in (401, 403) or status in PRE_AUTH_REFUSALS:
        return True
    raise AssertionError(f"{operation[0]} {operation[1]} is outside the caller's role but answered {status}")
