"""Request and response bodies of API-key administration."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Permission = Literal["read", "write", "escalate", "admin"]
KeyStatus = Literal["active", "revoked", "expired"]
NAME_MAX = 100
AREA_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
LIST_MAX = 50


def normalise_origin(origin: str) -> str:
    """scheme://host[:port] in lower case, or ValueError: what browsers send in the Origin header."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{origin}' is not an origin like https://mes.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"'{origin}' must be scheme://host[:port] with nothing after it")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


class ApiKeyCreate(BaseModel):
    """A new key for one external system. Give each system its own key."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        min_length=1,
        max_length=NAME_MAX,
        examples=["MES line 3"],
        description="The external system; recorded as the reporter of incidents it creates.",
    )
    owner_email: str = Field(
        min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$", examples=["mes-team@example.com"]
    )
    permissions: list[Permission] = Field(
        min_length=1,
        max_length=4,
        examples=[["read", "write"]],
        description="read: GET; write: create/change; escalate: write at supervisor level; admin: everything.",
    )
    rate_limit_per_minute: int = Field(default=60, ge=1, le=100_000)
    allowed_networks: list[str] = Field(
        default_factory=list,
        max_length=LIST_MAX,
        examples=[["10.20.0.0/16"]],
        description="Client IP networks (CIDR); empty: any address.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        max_length=LIST_MAX,
        examples=[["https://mes.example.com"]],
        description="Browser origins; when set, requests must carry one of them in the Origin header.",
    )
    allowed_areas: list[Annotated[str, StringConstraints(pattern=AREA_PATTERN)]] = Field(
        default_factory=list,
        max_length=LIST_MAX,
        examples=[["production"]],
        description="Area codes the key may read and write; incidents of other areas answer 404 as if they did "
        "not exist. Empty: every area.",
    )
    expires_at: datetime | None = Field(default=None, description="Timezone-aware; null: no expiry.")

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty or blank")
        return value

    @field_validator("permissions")
    @classmethod
    def _unique_permissions(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @field_validator("allowed_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        try:
            return sorted({str(ipaddress.ip_network(n.strip(), strict=False)) for n in value})
        except ValueError as exc:
            raise ValueError(f"not a CIDR network: {exc}") from None

    @field_validator("allowed_areas")
    @classmethod
    def _unique_areas(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @field_validator("allowed_origins")
    @classmethod
    def _valid_origins(cls, value: list[str]) -> list[str]:
        return sorted({normalise_origin(o) for o in value})

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a timezone, e.g. 2027-01-31T00:00:00Z")
        return value


class ApiKeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_minutes: int | None = Field(
        default=None, ge=0, le=43_200, description="How long the old key keeps working; default from settings."
    )


class ApiKeyOut(BaseModel):
    id: int
    name: str
    owner_email: str
    permissions: list[Permission]
    rate_limit_per_minute: int
    allowed_networks: list[str]
    allowed_origins: list[str]
    allowed_areas: list[str] = Field(description="Areas the key is limited to; empty: every area.")
    expires_at: datetime | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None
    last_used_ip: str | None
    use_count: int
    status: KeyStatus
    key_prefix: str | None = Field(description="The first characters of the current key, to recognise it.")
    previous_key_valid_until: datetime | None = Field(description="End of the grace period of a rotated key.")


class ApiKeyWithSecret(ApiKeyOut):
    key: str = Field(description="The key itself. Shown only in this reply: store it now.")
