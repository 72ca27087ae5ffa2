"""Request and response bodies of the auth and user endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.schema_fields import omitted

RoleName = Literal["reporter", "technician", "supervisor", "admin", "auditor"]
PasswordChangeReason = Literal["must_change", "expired"]


class TokenPair(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
    refresh_token: str
    password_change_required: bool = Field(
        default=False,
        description="True: every endpoint but the password change (POST /api/v1/auth/password), "
        "/api/v1/auth/me, refresh and logout answers 403 until the password is changed.",
    )
    password_change_reason: PasswordChangeReason | None = Field(
        default=None,
        description="must_change: set by an admin or at creation; expired: older than PRS_PASSWORD_MAX_AGE_DAYS.",
    )


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(
        min_length=1,
        max_length=256,
        description="At least 12 characters with upper case, lower case and a digit; not one "
        "of the account's last PRS_PASSWORD_HISTORY passwords.",
    )


class PasswordChanged(BaseModel):
    password_changed_at: datetime
    password_expires_at: datetime | None = Field(description="Null when passwords do not expire.")
    sessions_ended: int = Field(description="Other sessions of the account that were signed out.")


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
    created_at: datetime
    last_login_at: datetime | None
    locked: bool = Field(description="Locked after too many failed logins; an admin can unlock it.")
    locked_until: datetime | None
    failed_login_count: int = Field(description="Failed logins in the current counting window.")
    must_change_password: bool
    password_changed_at: datetime | None
    password_expires_at: datetime | None = Field(
        description="Null: local password never expires, or directory account."
    )
    password_change_required: bool


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
    must_change_password: bool = Field(default=False, description="Require a new password at the first login.")


class UserUpdate(BaseModel):
    """Changes to an account. An omitted field stays as it is; none may be null except `email`, where null
    removes the address."""

    model_config = ConfigDict(extra="forbid")
    role: RoleName = omitted()
    is_active: bool = omitted()
    display_name: DisplayName = omitted()
    email: Email = None
    password: Password = omitted(
        description="A new password; it must be changed at the next login unless must_change_password is false."
    )
    must_change_password: bool = omitted(description="Require a new password at the next login.")


class SigningKeyOut(BaseModel):
    kid: str = Field(description="The key id that access tokens carry in their `kid` header.")
    algorithm: Literal["HS256"]
    state: Literal["current", "verifying", "retired"] = Field(
        description="current: signs new tokens; verifying: retired but still accepts the tokens it signed; "
        "retired: refuses them (its secret is destroyed)."
    )
    created_at: datetime
    created_by: str
    retired_at: datetime | None
    verify_until: datetime | None = Field(description="Tokens signed with this key are accepted until then.")
    destroyed_at: datetime | None


class SigningKeyRotated(BaseModel):
    kid: str = Field(description="The new signing key.")
    created_at: datetime
    previous_kid: str | None
    previous_verifies_until: datetime | None = Field(
        description="The old key verifies tokens until then: the longest token lifetime plus one key refresh."
    )
