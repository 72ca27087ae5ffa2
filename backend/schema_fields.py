"""Field defaults shared by the request bodies of the domains."""

from __future__ import annotations

from typing import Any

from pydantic import Field


def omitted(**field: Any) -> Any:
    """The default of an update field that may be left out but not sent as null (`Field(default=None)`).

    Pydantic never validates a default: a left-out field reads None and stays out of `model_fields_set`, so
    `model_dump(exclude_unset=True)` leaves it out, while an explicit null fails the field's own (non-null) type.
    Typed Any so the annotation can keep that non-null type for validation and the schema; code that reads the
    attribute itself checks for None (or `model_fields_set`) first."""
    return Field(default=None, **field)
