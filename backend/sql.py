"""SQL building shared by the repositories: values are always bound parameters ($1, $2, ...), and column names come
from the repository's own whitelists, never from input."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TypeVar

R = TypeVar("R")


class Query:
    """The numbered parameters and the AND-ed conditions of one statement."""

    def __init__(self, *args: object) -> None:
        self.args: list[object] = list(args)
        self.conditions: list[str] = []

    def bind(self, value: object) -> str:
        """Add a parameter; returns its placeholder."""
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, condition: str) -> None:
        """AND a condition (written with placeholders from `bind`)."""
        self.conditions.append(condition)

    def where_present(self, filters: Mapping[str, object], conditions: Mapping[str, str]) -> None:
        """AND `conditions[name]` for every filter that is present (not None, not an empty text or list); `{}` in
        the condition stands for the filter's bound value."""
        for name, condition in conditions.items():
            value = filters.get(name)
            if value is None or (isinstance(value, (str, list, tuple)) and not value):
                continue
            self.where(condition.format(self.bind(value)))

    def where_sql(self) -> str:
        """` WHERE a AND b ...`, or nothing without conditions."""
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""


def update_by_id(
    table: str, *, columns: Iterable[str], changes: Mapping[str, object], row_id: object, now: datetime
) -> tuple[str, list[object]] | None:
    """`UPDATE table SET <whitelisted changed columns>, updated_at = $2 WHERE id = $1` and its arguments; None when
    none of `columns` is in `changes`."""
    query = Query(row_id, now)
    assignments = [f"{column} = {query.bind(changes[column])}" for column in columns if column in changes]
    if not assignments:
        return None
    return f"UPDATE {table} SET {', '.join(assignments)}, updated_at = $2 WHERE id = $1", query.args


def expect_row(row: R | None) -> R:
    """The row of a statement that always returns one (INSERT ... RETURNING, an aggregate, a read of a row this
    transaction has just written or locked): asyncpg types every fetchrow as optional."""
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row
