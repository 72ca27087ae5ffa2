"""HTTP endpoints for login, tokens and user administration."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from backend.auth.schemas import (
    PasswordChange,
    PasswordChanged,
    RefreshRequest,
    SigningKeyOut,
    SigningKeyRotated,
    TokenPair,
    UserCreate,
    UserOut,
    UserUpdate,
)
from backend.context import Principal
from backend.deps import (
    anonymous_context,
    context_for,
    get_container,
    get_rate_limits,
    require_person_with_role,
    require_signed_in_person,
)
from backend.errors import Unauthorized

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post(
    "/auth/token",
    response_model=TokenPair,
    summary="Log in (OAuth2 password flow)",
    description="Anyone. Form fields `username` and `password`: local accounts, or directory (LDAP) "
    "accounts when a directory is configured. Returns a 60-minute access token (JWT) and a "
    "7-day refresh token. Failed attempts are audited; after 5 failed attempts from one "
    "client address within a minute the answer is 429 with Retry-After. Each account locks "
    "after PRS_LOCKOUT_THRESHOLD (10) failed logins within PRS_LOCKOUT_WINDOW_MINUTES from any "
    "address; a locked account gets the same 401 as a wrong password, even with the right "
    "one. `password_change_required` in the reply: every endpoint but POST /auth/password, "
    "GET /auth/me, refresh and logout answers 403 until the password is changed. 503 when the "
    "directory is unreachable (local accounts still work).",
    responses={
        401: {"description": "Wrong username or password, or the account is locked or disabled"},
        403: {"description": "Directory account in no group that grants a role"},
        422: {"description": "Missing form field"},
        429: {"description": "Too many failed logins from this client address"},
        503: {"description": "The directory (LDAP) is unreachable"},
    },
)
async def login(request: Request, form: OAuth2PasswordRequestForm = Depends()) -> TokenPair:
    ctx = anonymous_context(request)
    limits = get_rate_limits(request)
    await limits.ensure_login_allowed(ctx.client_ip)
    try:
        return await get_container(request).auth.login(ctx, username=form.username, password=form.password)
    except Unauthorized:
        get_container(request).metrics.login_failures.inc()
        await limits.count_failed_login(ctx.client_ip)
        raise


@router.post(
    "/auth/refresh",
    response_model=TokenPair,
    summary="Rotate a refresh token",
    description="Anyone holding a refresh token. Returns a new token pair. A refresh token works once; "
    "presenting it again revokes the whole session (reuse detection).",
)
async def refresh(request: Request, body: RefreshRequest) -> TokenPair:
    return await get_container(request).auth.refresh(anonymous_context(request), refresh_token=body.refresh_token)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out",
    description="Anyone holding a refresh token. Revokes the session that the refresh token belongs to.",
)
async def logout(request: Request, body: RefreshRequest) -> None:
    await get_container(request).auth.logout(anonymous_context(request), refresh_token=body.refresh_token)


@router.get(
    "/auth/me",
    response_model=UserOut,
    summary="The current user",
    description="Any signed-in person, auditors and people who must still change their password included "
    "(API keys: 403).",
    responses={401: {"description": "Not signed in"}, 403: {"description": "An API key"}},
)
async def me(request: Request, principal: Principal = Depends(require_signed_in_person)) -> dict:
    assert principal.id is not None  # a signed-in person: a user, never an API key or the system
    return await get_container(request).auth.get_user(principal.id)


@router.post(
    "/auth/password",
    response_model=PasswordChanged,
    summary="Change my password",
    description="Any signed-in person with a local account, also while a change is required. The current "
    "password must be right (400 `current_password` otherwise, counted as a failed login), the "
    "new one must meet the policy (422 `new_password`) and differ from the last "
    "PRS_PASSWORD_HISTORY passwords (422 `new_password`, `rule: password_history`). Every "
    "other session of the account ends; this one goes on.",
    responses={
        400: {"description": "The current password is wrong; nothing changed"},
        401: {"description": "Not signed in"},
        403: {"description": "An API key"},
        422: {
            "description": "The new password breaks the policy or was used recently, or the "
            "account is a directory account"
        },
    },
)
async def change_password(
    request: Request, body: PasswordChange, principal: Principal = Depends(require_signed_in_person)
) -> dict:
    return await get_container(request).auth.change_own_password(context_for(request, principal), body)


@router.get(
    "/users",
    response_model=list[UserOut],
    tags=["users"],
    summary="List users",
    description="Admins only (people; API keys cannot manage accounts).",
)
async def list_users(request: Request, _: Principal = Depends(require_person_with_role("admin"))) -> list[dict]:
    return await get_container(request).auth.list_users()


@router.post(
    "/users",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    tags=["users"],
    summary="Create a local user",
    description="Admins only (people). Password policy: at least 12 characters with upper case, lower case "
    "and a digit. Role `auditor`: reads the audit log and the SLA and quality reports, nothing "
    "else. `must_change_password`: the person must choose a new password at the first login.",
)
async def create_user(
    request: Request, body: UserCreate, principal: Principal = Depends(require_person_with_role("admin"))
) -> dict:
    return await get_container(request).auth.create_user(context_for(request, principal), body)


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    tags=["users"],
    summary="Change a user",
    description="Admins only (people): role, active flag, profile, password or `must_change_password`. A "
    "password set here must be changed at the next login unless `must_change_password` is "
    "false. The last active admin cannot be demoted or disabled. Role changes are audited as "
    "user.role_changed; directory accounts get their role from their groups at each login.",
)
async def update_user(
    request: Request,
    body: UserUpdate,
    user_id: int = Path(ge=1, le=2**63 - 1),
    principal: Principal = Depends(require_person_with_role("admin")),
) -> dict:
    return await get_container(request).auth.update_user(context_for(request, principal), user_id, body)


@router.post(
    "/users/{user_id}/unlock",
    response_model=UserOut,
    tags=["users"],
    summary="Unlock an account",
    description="Admins only (people). Ends a lockout after failed logins at once and forgets the failures "
    "counted; audited as user.unlocked. Unlocking an account that is not locked changes nothing.",
    responses={
        401: {"description": "Not signed in"},
        403: {"description": "Not an admin, or an API key"},
        404: {"description": "No such user"},
    },
)
async def unlock_user(
    request: Request,
    user_id: int = Path(ge=1, le=2**63 - 1),
    principal: Principal = Depends(require_person_with_role("admin")),
) -> dict:
    return await get_container(request).auth.unlock_user(context_for(request, principal), user_id)


@router.get(
    "/signing-keys",
    response_model=list[SigningKeyOut],
    tags=["signing keys"],
    summary="List the JWT signing keys",
    description="Admins only (people). Every key of this server's PRS_JWT_SECRET, newest first, with its "
    "state; never a secret.",
    responses={401: {"description": "Not signed in"}, 403: {"description": "Not an admin, or an API key"}},
)
async def list_signing_keys(request: Request, _: Principal = Depends(require_person_with_role("admin"))) -> list:
    return await get_container(request).auth.signing_keys.list()


@router.post(
    "/signing-keys/rotate",
    response_model=SigningKeyRotated,
    tags=["signing keys"],
    summary="Rotate the JWT signing key",
    description="Admins only (people); also `prs keys rotate`. A new key signs from now on; the old one "
    "keeps verifying the tokens it signed until they have all expired (the access-token "
    "lifetime plus PRS_SIGNING_KEY_REFRESH_S), then its secret is destroyed. Every replica "
    "picks the new key up within PRS_SIGNING_KEY_REFRESH_S, without a restart; nobody is "
    "signed out. Audited as signing_key.rotated.",
    responses={401: {"description": "Not signed in"}, 403: {"description": "Not an admin, or an API key"}},
)
async def rotate_signing_key(
    request: Request, principal: Principal = Depends(require_person_with_role("admin"))
) -> dict:
    return await get_container(request).auth.signing_keys.rotate(context_for(request, principal))
