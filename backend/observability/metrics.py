"""Prometheus metrics of the HTTP layer and the agent, labelled by route template (never by raw path)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.context import request_id_var

SUGGESTION_OUTCOMES = ("ready", "pending", "failed", "skipped")
ALERT_ACTIONS = ("created", "duplicate", "refired", "resolved", "resolved_unknown")
_REQUEST_ID_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class Metrics:
    """All metrics of one app instance, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "prs_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "prs_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.http_in_flight = Gauge(
            "prs_http_requests_in_flight", "HTTP requests being served.", registry=self.registry
        )
        self.retrieval_latency = Histogram(
            "prs_retrieval_duration_seconds",
            "Similar-incident retrieval latency, embedding included.",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.suggestions = Counter(
            "prs_suggestions_total", "Suggestion generation attempts by outcome.", ["outcome"], registry=self.registry
        )
        self.llm_node_up = Gauge(
            "prs_llm_node_up", "1 when an LLM node answered its last health check.", ["node"], registry=self.registry
        )
        self.incidents_created = Counter(
            "prs_incidents_created_total",
            "Incidents created by area and priority.",
            ["area", "priority"],
            registry=self.registry,
        )
        self.suggestion_seconds = Histogram(
            "prs_suggestion_generation_seconds",
            "Time of one suggestion attempt, retrieval included, by outcome.",
            ["outcome"],
            registry=self.registry,
            buckets=(0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
        )
        self.suggestion_first_token = Histogram(
            "prs_suggestion_first_token_seconds",
            "Time from the start of a suggestion attempt to its first token.",
            registry=self.registry,
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
        )
        self.suggestion_tokens_per_second = Histogram(
            "prs_suggestion_tokens_per_second",
            "Generation speed of finished suggestions (tokens per second).",
            registry=self.registry,
            buckets=(1, 2, 5, 10, 20, 40, 80, 160),
        )
        self.login_failures = Counter(
            "prs_login_failures_total", "Failed sign-ins (wrong name or password).", registry=self.registry
        )
        self.rate_limited = Counter(
            "prs_rate_limited_total", "Requests refused with 429, by limit.", ["reason"], registry=self.registry
        )
        self.api_key_denials = Counter(
            "prs_api_key_denials_total", "Requests refused an API key, by reason.", ["reason"], registry=self.registry
        )
        self.alerts_received = Counter(
            "prs_alertmanager_alerts_total",
            "Alertmanager alerts received, by what was done with them.",
            ["action"],
            registry=self.registry,
        )
        # Known label values exist from start-up, at zero, so a fresh installation already shows every series.
        for outcome in SUGGESTION_OUTCOMES:
            self.suggestions.labels(outcome)
        for action in ALERT_ACTIONS:
            self.alerts_received.labels(action)
        ProcessCollector(registry=self.registry)

    def track_llm_nodes(self, urls: Iterable[str]) -> None:
        """Declare the node gauge for every configured node at start-up (down until a health check says up)."""
        for url in urls:
            self.llm_node_up.labels(url).set(0)

    def count_refusal(self, status_code: int, reason: object) -> None:
        """Count a refused request: 429s by limit, API-key denials by reason."""
        if status_code == 429:
            self.rate_limited.labels(str(reason or "unknown")).inc()
        elif isinstance(reason, str) and reason.startswith("api_key_"):
            self.api_key_denials.labels(reason).inc()


class PoolCollector(Collector):
    """Database pool usage of this process, read when scraped."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    def collect(self) -> Iterable[Metric]:
        """Connections open, idle and the configured maximum."""
        size = self.pool.get_size()
        idle = self.pool.get_idle_size()
        yield GaugeMetricFamily("prs_db_pool_connections", "Connections the pool holds open.", value=size)
        yield GaugeMetricFamily("prs_db_pool_in_use", "Pool connections lent out right now.", value=size - idle)
        yield GaugeMetricFamily("prs_db_pool_max", "The pool's maximum size.", value=self.pool.get_max_size())


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
