"""HTTP endpoints for API-key administration (admins who are people; keys cannot mint keys)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request, status

from backend.apikeys.schemas import ApiKeyCreate, ApiKeyOut, ApiKeyRotate, ApiKeyWithSecret
from backend.context import Principal
from backend.deps import context_for, get_container, require_person_with_role

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])
admin_person = require_person_with_role("admin")
KEY_ID = Path(ge=1, le=2**63 - 1, description="The key's id.")


@router.post(
    "",
    response_model=ApiKeyWithSecret,
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API key",
    description="Admins only (people). The reply holds the key (`prs_live_...`) once; only its hash is "
    "stored. Permissions: read, write, escalate (implies write), admin (everything). "
    "`allowed_networks` (CIDR) and `allowed_origins` restrict where the key may be used.",
)
async def create_api_key(request: Request, body: ApiKeyCreate, principal: Principal = Depends(admin_person)) -> dict:
    return await get_container(request).api_keys.create(context_for(request, principal), body)


@router.get(
    "",
    response_model=list[ApiKeyOut],
    summary="List API keys",
    description="Admins only (people). State, last use and use count of every key; never a secret.",
)
async def list_api_keys(request: Request, _: Principal = Depends(admin_person)) -> list[dict]:
    return await get_container(request).api_keys.list()


@router.get("/{api_key_id}", response_model=ApiKeyOut, summary="Get an API key", description="Admins only (people).")
async def get_api_key(request: Request, api_key_id: int = KEY_ID, _: Principal = Depends(admin_person)) -> dict:
    return await get_container(request).api_keys.get(api_key_id)


@router.post(
    "/{api_key_id}/revoke",
    response_model=ApiKeyOut,
    summary="Revoke an API key",
    description="Admins only (people). The key, and a rotated predecessor still in its grace period, "
    "stop working at once. 409 when already revoked.",
)
async def revoke_api_key(
    request: Request, api_key_id: int = KEY_ID, principal: Principal = Depends(admin_person)
) -> dict:
    return await get_container(request).api_keys.revoke(context_for(request, principal), api_key_id)


@router.post(
    "/{api_key_id}/rotate",
    response_model=ApiKeyWithSecret,
    summary="Rotate an API key",
    description="Admins only (people). Issues a new key (shown once); the old one keeps working for "
    "`grace_minutes` (default PRS_API_KEY_ROTATION_GRACE_MINUTES), then stops.",
)
async def rotate_api_key(
    request: Request,
    api_key_id: int = KEY_ID,
    body: ApiKeyRotate | None = None,
    principal: Principal = Depends(admin_person),
) -> dict:
    grace = body.grace_minutes if body else None
    return await get_container(request).api_keys.rotate(context_for(request, principal), api_key_id, grace)
