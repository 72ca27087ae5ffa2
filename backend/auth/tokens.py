"""Access tokens (JWT, HS256, signed by a key named in the `kid` header) and opaque refresh tokens stored only
as hashes."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt

from backend.config import Settings
from backend.errors import Unauthorized

ISSUER = "pr-system"
AUDIENCE = "pr-system-api"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    """What a valid access token says."""

    user_id: int
    username: str
    role: str
    expires_at: datetime
    session_id: uuid.UUID  # the login session (refresh-token family): logging out or a detected reuse ends it


def resolve_jwt_secret(settings: Settings) -> str:
    """The master secret that encrypts the signing keys: the configured one, or one generated once and kept in
    the data folder (mode 0600)."""
    if settings.jwt_secret:
        if len(settings.jwt_secret) < 32:
            raise ValueError("PRS_JWT_SECRET must be at least 32 characters")
        return settings.jwt_secret
    path: Path = settings.ensure_data_dir() / "jwt-secret"
    if not path.exists():
        secret = secrets.token_urlsafe(48)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secret)
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text().strip()


def issue_access_token(
    secret: str, *, kid: str, user_id: int, username: str, role: str, now: datetime, minutes: int, session_id: uuid.UUID
) -> str:
    """A signed, short-lived access token bound to its login session; `kid` names the signing key."""
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "name": username,
        "role": role,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=minutes)).timestamp()),
        "jti": uuid.uuid4().hex,
        "sid": str(session_id),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})


def token_key_id(token: str) -> str:
    """The `kid` header of a token (unverified: it only picks the key to verify with), or Unauthorized."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid access token: {exc}") from None
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 64:
        raise Unauthorized("invalid access token: no signing key id (kid)")
    return kid


def decode_access_token(secret: str, token: str, *, now: datetime) -> AccessClaims:
    """Check signature, algorithm, audience, issuer and expiry; raise Unauthorized otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "role", "typ", "sid"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid access token: {exc}") from None
    if claims.get("typ") != "access":
        raise Unauthorized("invalid access token: wrong token type")
    # Expiry and issue time are checked against the injectable clock, not the wall clock.
    if int(claims["exp"]) <= int(now.timestamp()):
        raise Unauthorized("access token expired")
    if int(claims["iat"]) > int(now.timestamp()) + 60:
        raise Unauthorized("invalid access token: issued in the future")
    try:
        user_id = int(claims["sub"])
    except ValueError:
        raise Unauthorized("invalid access token: bad subject") from None
    try:
        session_id = uuid.UUID(str(claims["sid"]))
    except ValueError:
        raise Unauthorized("invalid access token: bad session") from None
    return AccessClaims(
        user_id=user_id,
        username=str(claims.get("name", "")),
        role=str(claims["role"]),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo),
        session_id=session_id,
    )


def new_refresh_token() -> str:
    """A random opaque refresh token; only its hash is stored."""
    return "prs_rt_" + secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """SHA-256 of a refresh token (it is random and long, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()
