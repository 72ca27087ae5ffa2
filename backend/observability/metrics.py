"""Prometheus metrics of the HTTP layer and the agent, labelled by route template (never by raw path)."""

from __future__ import annotations

import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.context import request_id_var

_REQUEST_ID_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class Metrics:
    """All metrics of one app instance, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "prs_http_requests_total", "HTTP requests by method, route template and status code.",
            ["method", "route", "status"], registry=self.registry)
        self.http_latency = Histogram(
            "prs_http_request_duration_seconds", "HTTP request latency by method and route template.",
            ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.http_in_flight = Gauge("prs_http_requests_in_flight", "HTTP requests being served.",
                                    registry=self.registry)
        self.retrieval_latency = Histogram(
            "prs_retrieval_duration_seconds", "Similar-incident retrieval latency, embedding included.",
            registry=self.registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.suggestions = Counter("prs_suggestions_total", "Suggestion generation attempts by outcome.",
                                   ["outcome"], registry=self.registry)
        self.llm_node_up = Gauge("prs_llm_node_up", "1 when an LLM node answered its last health check.",
                                 ["node"], registry=self.registry)
        self.incidents_created = Counter("prs_incidents_created_total", "Incidents created by area and priority.",
                                         ["area", "priority"], registry=self.registry)


def _route_template(scope: Scope) -> str:
    """The matched route's template (set in the scope by the router), never the raw path."""
    route = scope.get("route")
    return getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"


class RequestMiddleware:
    """Assigns a request id, echoes it back, and records count and latency per route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 64 and set(incoming) <= _REQUEST_ID_OK else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
            await send(message)

        self.metrics.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.http_in_flight.dec()
            route = _route_template(scope)
            method = scope.get("method", "GET")
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_latency.labels(method, route).observe(time.perf_counter() - start)
            request_id_var.reset(token)
