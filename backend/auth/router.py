"""HTTP endpoints for login, tokens and user administration."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from backend.auth.dependencies import (
    anonymous_context, context_for, get_rate_limits, get_services, require_person_with_role, require_role,
)
from backend.auth.schemas import RefreshRequest, TokenPair, UserCreate, UserOut, UserUpdate
from backend.context import Principal
from backend.errors import Unauthorized

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", response_model=TokenPair, summary="Log in (OAuth2 password flow)",
             description="Anyone. Form fields `username` and `password`: local accounts, or directory (LDAP) "
                         "accounts when a directory is configured. Returns a 60-minute access token (JWT) and a "
                         "7-day refresh token. Failed attempts are audited; after 5 failed attempts from one "
                         "client address within a minute the answer is 429 with Retry-After. 503 when the "
                         "directory is unreachable (local accounts still work).")
async def login(request: Request, form: OAuth2PasswordRequestForm = Depends()) -> TokenPair:
    ctx = anonymous_context(request)
    limits = get_rate_limits(request)
    await limits.ensure_login_allowed(ctx.client_ip)
    try:
        return await get_services(request).auth.login(ctx, username=form.username, password=form.password)
    except Unauthorized:
        get_services(request).metrics.login_failures.inc()
        await limits.count_failed_login(ctx.client_ip)
        raise


@router.post("/auth/refresh", response_model=TokenPair, summary="Rotate a refresh token",
             description="Anyone holding a refresh token. Returns a new token pair. A refresh token works once; "
                         "presenting it again revokes the whole session (reuse detection).")
async def refresh(request: Request, body: RefreshRequest) -> TokenPair:
    return await get_services(request).auth.refresh(anonymous_context(request), refresh_token=body.refresh_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Log out",
             description="Anyone holding a refresh token. Revokes the session that the refresh token belongs to.")
async def logout(request: Request, body: RefreshRequest) -> None:
    await get_services(request).auth.logout(anonymous_context(request), refresh_token=body.refresh_token)


@router.get("/auth/me", response_model=UserOut, summary="The current user",
            description="Any authenticated role.")
async def me(request: Request, principal: Principal = Depends(require_role("reporter"))) -> dict:
    return await get_services(request).auth.get_user(principal.id)


@router.get("/users", response_model=list[UserOut], tags=["users"], summary="List users",
            description="Admins only (people; API keys cannot manage accounts).")
async def list_users(request: Request, _: Principal = Depends(require_person_with_role("admin"))) -> list[dict]:
    return await get_services(request).auth.list_users()


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED, tags=["users"],
             summary="Create a local user",
             description="Admins only (people). Password policy: at least 12 characters with upper case, lower case "
                         "and a digit. `is_auditor` grants read access to the audit log.")
async def create_user(request: Request, body: UserCreate,
                      principal: Principal = Depends(require_person_with_role("admin"))) -> dict:
    return await get_services(request).auth.create_user(context_for(request, principal), body)


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"], summary="Change a user",
              description="Admins only (people): role, auditor flag, active flag, profile or password. The last "
                          "active admin cannot be demoted or disabled. Role and auditor changes are audited as "
                          "user.role_changed; directory accounts get their role from their groups at each login.")
async def update_user(request: Request, body: UserUpdate, user_id: int = Path(ge=1, le=2**63 - 1),
                      principal: Principal = Depends(require_person_with_role("admin"))) -> dict:
    return await get_services(request).auth.update_user(context_for(request, principal), user_id, body)
