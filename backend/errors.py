"""One error hierarchy, one JSON shape: {"error": ClassName, "detail": message, "field"?: name}."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class AppError(Exception):
    """Base of every error the API turns into a JSON answer."""

    status_code = 500
    headers: dict[str, str] | None = None

    def __init__(self, detail: str, *, field: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra or {}

    def to_body(self) -> dict[str, Any]:
        """The JSON body clients receive."""
        body: dict[str, Any] = {"error": type(self).__name__, "detail": self.detail}
        if self.field is not None:
            body["field"] = self.field
        body.update(self.extra)
        return body


class BadRequest(AppError):
    status_code = 400


class ValidationFailed(AppError):
    status_code = 422


class Unauthorized(AppError):
    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413


class ServiceUnavailable(AppError):
    status_code = 503


def found(value: T | None, what: str) -> T:
    """`value`, or NotFound "<what> not found" when it is None: the one load-or-404 of every service."""
    if value is None:
        raise NotFound(f"{what} not found")
    return value
