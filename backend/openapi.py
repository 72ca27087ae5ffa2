"""The OpenAPI document as clients need it: the one error shape on every error answer, and links.

Errors: every operation documents the error statuses it can answer (400 malformed JSON or cursor, 401/403
access, 404 unknown id, 409 state conflicts, 413 oversized body, 422 validation, 429 rate limits, 503 a
dependency down), each with the body `{"error", "detail", "field"?}` that `backend.errors` produces.

Links: a client (or a fuzzer such as schemathesis) reading the schema learns that the `id` in the answer of
`POST /api/v1/incidents` is the `incident_id` of `GET /api/v1/incidents/{incident_id}`, of its PATCH, of
`POST /api/v1/incidents/{incident_id}/comments` and so on. Both are derived from the routes, so a new endpoint
is documented without anyone remembering to add it.
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
        match = _FIRST_PARAMETER.match(path[len(collection) :])
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


ERROR_SCHEMA_NAME = "ErrorBody"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "description": "The one error shape of every endpoint.",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "The kind of error, e.g. ValidationFailed, NotFound."},
        "detail": {"type": "string", "description": "A message for people."},
        "field": {"type": "string", "description": "The request field at fault, when one is."},
        "errors": {
            "type": "array",
            "description": "Validation: every field at fault.",
            "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
        },
    },
    "additionalProperties": True,
}
ERROR_DESCRIPTIONS = {
    "400": "Malformed request (not JSON, or an invalid cursor)",
    "401": "Not authenticated: no, an expired or an unknown token or API key",
    "403": "Authenticated, but the role, permission or key scope does not allow this",
    "404": "No such resource, or not visible to the caller",
    "409": "The resource's state does not allow this change",
    "413": "Request body too large",
    "422": "A field is invalid; `field` names it",
    "429": "Rate limit reached; retry after the `Retry-After` seconds",
    "503": "A dependency (database, directory, vector store, LLM) is unavailable; retry later",
}
_PUBLIC_PATHS = ("/health", "/metrics")


def _error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    """The error statuses this operation can answer, from its path, method and parameters."""
    if path.startswith(_PUBLIC_PATHS):
        return ["503"] if path.startswith("/health") else []
    statuses = ["400", "401", "403", "422", "429", "503"]
    if "{" in path:
        statuses.append("404")
    if method != "get":
        statuses.append("409")
    if "requestBody" in operation:
        statuses.append("413")
    return sorted(statuses)


def add_error_responses(document: dict[str, Any]) -> dict[str, Any]:
    """Document the error answers of every operation with the one error shape; returns the same document."""
    document.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
    for path, operations in document.get("paths", {}).items():
        for method in _HTTP_METHODS:
            operation = operations.get(method)
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            for status in _error_statuses(path, method, operation):
                response = responses.setdefault(status, {"description": ERROR_DESCRIPTIONS[status]})
                # FastAPI's own 422 body (HTTPValidationError) is not what the API sends: replace it.
                if "content" not in response or "HTTPValidationError" in str(response["content"]):
                    response["content"] = {"application/json": {"schema": reference}}
    schemas = document["components"]["schemas"]
    if not any("HTTPValidationError" in str(op) for ops in document.get("paths", {}).values() for op in ops.values()):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return document


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json) carry error answers and links; computed once, as FastAPI does."""
    generate = app.openapi

    def openapi_with_errors_and_links() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(add_error_responses(generate()))
        return app.openapi_schema

    app.openapi = openapi_with_errors_and_links  # type: ignore[method-assign]
