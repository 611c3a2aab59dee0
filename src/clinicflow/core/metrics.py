"""Prometheus metrics: requests and latency by route template (never by raw path, which would
explode label cardinality with ids). Several workers: set PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from starlette.types import Scope

REQUESTS = Counter(
    "clinicflow_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "clinicflow_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    # path_format: the template without convertors ("/patients/{patient_id}").
    return str(getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched")


def observe(scope: Scope, status: int, seconds: float) -> None:
    route = route_label(scope)
    REQUESTS.labels(scope["method"], route, str(status)).inc()
    LATENCY.labels(scope["method"], route).observe(seconds)
