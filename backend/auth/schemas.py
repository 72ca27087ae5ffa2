"""Request and response bodies of the auth and user endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

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


# One annotated type per field, shared by creation and change, so POST and PATCH validate alike.
Username = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")]
Password = Annotated[str, Field(min_length=1, max_length=256)]
DisplayName = Annotated[str, Field(max_length=200)]
Email = Annotated[str | None, Field(max_length=254)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Username
    password: Password
    role: RoleName
    display_name: DisplayName = ""
    email: Email = None
    is_auditor: bool = Field(default=False, description="Grants read access to the audit log.")


class UserUpdate(BaseModel):
    """Changes to an account. An omitted field stays as it is; none may be null except `email`, where null
    also leaves it as it is."""

    model_config = ConfigDict(extra="forbid")
    role: RoleName = Field(default=None)
    is_active: bool = Field(default=None)
    display_name: DisplayName = Field(default=None)
    email: Email = None
    password: Password = Field(default=None)
    is_auditor: bool = Field(default=None, description="Grant or withdraw read access to the audit log.")
