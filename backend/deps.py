"""FastAPI dependencies: who is calling (bearer token or API key), from where, and may they do this."""

from __future__ import annotations

from typing import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from backend.apikeys.service import grants, permission_for_method
from backend.auth.client_address import resolve_client_ip
from backend.auth.rate_limits import RateLimits
from backend.container import Container
from backend.context import ROLE_ORDER, Principal, RequestContext, request_id_var
from backend.errors import Forbidden, NotFound, Unauthorized

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The key of an external system (prs_live_...)."
)


def get_container(request: Request) -> Container:
    """The application's service container."""
    container: Container = request.app.state.container
    return container


def get_rate_limits(request: Request) -> RateLimits:
    """This app's rate limits (shared with other replicas through their storage)."""
    limits: RateLimits = request.app.state.rate_limits
    return limits


def client_ip(request: Request) -> str | None:
    """The caller's address: the socket peer, or what trusted reverse proxies say it is."""
    cached: str | None = getattr(request.state, "client_ip", None)
    if cached is not None:
        return cached
    peer = request.client.host if request.client else None
    trusted = getattr(request.app.state, "trusted_proxy_networks", ())
    resolved = resolve_client_ip(peer, request.headers.getlist("x-forwarded-for"), trusted)
    request.state.client_ip = resolved
    return resolved


async def authenticate(
    request: Request, token: str | None = Depends(oauth2_scheme), api_key: str | None = Depends(api_key_scheme)
) -> Principal:
    """Authenticate the request by its bearer token or its X-API-Key header (a pending password change allowed)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if api_key is not None and token:
        raise Unauthorized("send either 'Authorization: Bearer <token>' or 'X-API-Key: <key>', not both")
    if api_key is not None:
        principal = await _api_key_principal(request, api_key)
    elif token:
        auth = get_container(request).auth
        principal = await auth.load_active_principal(await auth.verify_access_token(token))
    else:
        raise Unauthorized(
            "authentication required: send 'Authorization: Bearer <access token>' "
            "(people) or 'X-API-Key: <key>' (external systems)"
        )
    request.state.principal = principal
    return principal


async def get_principal(request: Request, principal: Principal = Depends(authenticate)) -> Principal:
    """The authenticated caller; 403 while the person must change their password first, and 404 for an incident
    outside the areas an API key is limited to (the same answer as for one that does not exist)."""
    if principal.password_change is not None:
        why = "has expired" if principal.password_change == "expired" else "must be changed before first use"
        raise Forbidden(
            f"your password {why}; change it with POST /api/v1/auth/password",
            extra={"reason": "password_change_required"},
        )
    if principal.areas is not None:
        await _require_incident_in_scope(request, principal)
    return principal


async def _require_incident_in_scope(request: Request, principal: Principal) -> None:
    """Every route about one incident names it `incident_id`: one check covers them all."""
    raw = request.path_params.get("incident_id")
    try:
        incident_id = int(raw) if raw is not None else None
    except ValueError:
        return  # not a number: the route's own validation answers 422
    if incident_id is None or not 1 <= incident_id <= 2**63 - 1:
        return
    area = await get_container(request).incidents.area_of(incident_id)
    if area is None or not principal.may_see_area(area):  # missing or outside: one answer for both
        raise NotFound(f"incident {incident_id} not found")


async def require_signed_in_person(principal: Principal = Depends(authenticate)) -> Principal:
    """Any signed-in person, whatever the role, even one who must change their password (API keys: 403)."""
    if principal.kind != "user":
        raise Forbidden("only a signed-in person may do this; API keys have no account")
    return principal


async def _api_key_principal(request: Request, raw_key: str) -> Principal:
    """Check the key, spend one request of its rate limit, and require the permission the method needs."""
    services, limits = get_container(request), get_rate_limits(request)
    anonymous = anonymous_context(request)
    await limits.ensure_key_attempts_allowed(anonymous.client_ip)
    try:
        identity = await services.api_keys.authenticate(anonymous, raw_key, origin=request.headers.get("origin"))
    except (Unauthorized, Forbidden):
        await limits.count_rejected_key(anonymous.client_ip)
        raise
    await limits.spend_api_key_request(identity.id, identity.name, identity.rate_limit_per_minute)
    principal = identity.principal()
    await services.api_keys.require_permission(context_for(request, principal), permission_for_method(request.method))
    await services.api_keys.record_use(identity, anonymous.client_ip)
    return principal


async def principal_from_api_key(request: Request, raw_key: str) -> Principal:
    """Authenticate a key presented other than in X-API-Key (e.g. Alertmanager's `Authorization: Bearer`)."""
    principal = await _api_key_principal(request, raw_key)
    request.state.principal = principal
    return principal


def require_role(role: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits principals whose role is at least `role`."""
    if role not in ROLE_ORDER:
        raise ValueError(f"unknown role {role}")

    async def dependency(principal: Principal = Depends(get_principal)) -> Principal:
        if not principal.has_role(role):
            raise Forbidden(f"this action needs the role '{role}' or higher; you are '{principal.role}'")
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


def require_person_with_role(role: str) -> Callable[..., Awaitable[Principal]]:
    """Like require_role, but only for people: API keys may not manage accounts or keys."""
    role_check = require_role(role)

    async def dependency(principal: Principal = Depends(role_check)) -> Principal:
        if principal.kind != "user":
            raise Forbidden("only a signed-in person may do this; API keys cannot manage accounts or keys")
        return principal

    dependency.__name__ = f"require_person_{role}"
    return dependency


async def require_audit_reader(principal: Principal = Depends(get_principal)) -> Principal:
    """Admins and auditors."""
    if not principal.may_read_audit_log():
        raise Forbidden("reading the audit log needs the role 'admin' or 'auditor'")
    return principal


async def require_metrics_reader(principal: Principal = Depends(get_principal)) -> Principal:
    """Supervisors and above, and auditors: the SLA and service-quality reports."""
    if not principal.may_read_metrics():
        raise Forbidden(f"these reports need the role 'supervisor' or higher, or 'auditor'; you are '{principal.role}'")
    return principal


def require_api_key(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency for the external API: an API key holding `permission` (read, write, escalate, admin)."""

    async def dependency(request: Request, principal: Principal = Depends(get_principal)) -> Principal:
        if principal.kind != "api_key":
            raise Unauthorized("the external API takes an 'X-API-Key' header; bearer tokens are for people")
        if not grants(principal.permissions, permission):
            await get_container(request).api_keys.require_permission(context_for(request, principal), permission)
        return principal

    dependency.__name__ = f"require_api_key_{permission}"
    return dependency


def context_for(request: Request, principal: Principal) -> RequestContext:
    """The audit context of this request."""
    return RequestContext(principal=principal, client_ip=client_ip(request), request_id=request_id_var.get())


def anonymous_context(request: Request) -> RequestContext:
    """The audit context of an unauthenticated request (login, refresh)."""
    anon = Principal(kind="user", id=None, name="anonymous", role="reporter")
    return RequestContext(principal=anon, client_ip=client_ip(request), request_id=request_id_var.get())
