"""Request and response bodies of the auth and user endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RoleName = Literal["reporter", "technician", "supervisor", "admin"]


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=10, max_length=200)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    email: str | None
    role: RoleName
    source: str
    is_active: bool
    is_auditor: bool = Field(description="May read the audit log (admins always may).")
    created_at: datetime
    last_login_at: datetime | None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
    password: str = Field(min_length=1, max_length=256)
    role: RoleName
    display_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=254)
    is_auditor: bool = Field(default=False, description="Grants read access to the audit log.")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: RoleName | None = None
    is_active: bool | None = None
    display_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    password: str | None = Field(default=None, min_length=1, max_length=256)
    is_auditor: bool | None = Field(default=None, description="Grant or withdraw read access to the audit log.")
