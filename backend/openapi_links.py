"""OpenAPI links from every create operation to the operations on what it created.

A client (or a fuzzer such as schemathesis) reading the schema learns that the `id` in the answer of
`POST /api/v1/incidents` is the `incident_id` of `GET /api/v1/incidents/{incident_id}`, of its PATCH, of
`POST /api/v1/incidents/{incident_id}/comments` and so on. The links are derived from the paths, so a new
endpoint under a collection gets its link without anyone remembering to add it.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

_HTTP_METHODS = ("get", "put", "post", "patch", "delete")
_FIRST_PARAMETER = re.compile(r"^/\{([A-Za-z_][A-Za-z0-9_]*)\}(?:/|$)")


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (one level is all FastAPI produces for response bodies)."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = document
    for part in ref[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, dict) else {}
    return target if isinstance(target, dict) else {}


def _created_id_response(operation: dict[str, Any], document: dict[str, Any]) -> dict[str, Any] | None:
    """The 201 response of `operation` when its JSON body is an object with an `id`."""
    response = operation.get("responses", {}).get("201")
    if not isinstance(response, dict):
        return None
    body = response.get("content", {}).get("application/json", {}).get("schema", {})
    if "id" not in _resolve(body, document).get("properties", {}):
        return None
    return response


def _operations_on_created(collection: str, paths: dict[str, Any]) -> list[tuple[str, str]]:
    """(operationId, parameter name) of every operation on `collection/{parameter}...`."""
    found = []
    for path, operations in paths.items():
        if not path.startswith(collection + "/"):
            continue
        match = _FIRST_PARAMETER.match(path[len(collection):])
        if match is None:
            continue
        for method in _HTTP_METHODS:
            operation = operations.get(method)
            if isinstance(operation, dict) and operation.get("operationId"):
                found.append((operation["operationId"], match.group(1)))
    return found


def add_links(document: dict[str, Any]) -> dict[str, Any]:
    """Add `links` to the 201 answer of every create operation; returns the same document."""
    paths = document.get("paths", {})
    for collection, operations in paths.items():
        creator = operations.get("post")
        if not isinstance(creator, dict):
            continue
        response = _created_id_response(creator, document)
        if response is None:
            continue
        links = response.setdefault("links", {})
        for operation_id, parameter in sorted(_operations_on_created(collection, paths)):
            links[operation_id] = {
                "operationId": operation_id,
                "parameters": {parameter: "$response.body#/id"},
                "description": f"The `id` returned here is the `{parameter}` of this operation.",
            }
    return document


def install_openapi_links(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json) carry the links; computed once, like FastAPI's own schema."""
    generate = app.openapi

    def openapi_with_links() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(generate())
        return app.openapi_schema

    app.openapi = openapi_with_links  # type: ignore[method-assign]
