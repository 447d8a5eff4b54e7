"""The gateway's Prometheus metrics (``GET /metrics``), one ``CollectorRegistry`` per app.

Label names follow the OpenTelemetry GenAI semantic conventions where one exists, with dots
written as underscores (``gen_ai.request.model`` -> ``gen_ai_request_model``,
``gen_ai.token.type`` -> ``gen_ai_token_type``, ``http.response.status_code``,
``error.type``); ``arm`` (primary, candidate, shadow), ``reason`` and ``entity`` are medops's own.
Histogram buckets are the ones the conventions recommend for ``gen_ai.client.operation.duration``
and ``gen_ai.server.time_to_first_token``.

Every metric is updated with a few dictionary lookups and a lock, from the event loop (requests)
or from the recorder's thread (tokens, PHI, drops); nothing here reads the store on a request.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
REQUEST_LABELS = ("gen_ai_request_model", "gen_ai_operation_name", "arm")

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics"]


class GatewayMetrics:
    """Counters, histograms and gauges of one gateway, in their own registry."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "medops_gateway_requests",
            "Requests answered, by model, operation, arm and HTTP status returned.",
            (*REQUEST_LABELS, "http_response_status_code"),
            registry=registry,
        )
        self.errors = Counter(
            "medops_gateway_errors",
            "Requests that failed: the upstream answered an error status or never answered.",
            (*REQUEST_LABELS, "error_type"),
            registry=registry,
        )
        self.duration = Histogram(
            "medops_gateway_request_duration_seconds",
            "Time from the request's arrival to the last byte of the answer.",
            REQUEST_LABELS,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "medops_gateway_time_to_first_token_seconds",
            "Streamed requests: time from the request's arrival to the first chunk with content.",
            REQUEST_LABELS,
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.overhead = Histogram(
            "medops_gateway_overhead_seconds",
            "Time a request spent in the gateway's own code, not waiting on the upstream: from its arrival "
            "to the upstream call, plus (plain) from the upstream's last byte to the answer sent, or "
            "(stream) the longest any chunk waited between its arrival and its sending.",
            ("gen_ai_operation_name", "kind"),
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "medops_gateway_tokens",
            "Tokens reported by the upstream's usage (gen_ai_token_type: input or output).",
            ("gen_ai_request_model", "arm", "gen_ai_token_type"),
            registry=registry,
        )
        self.in_flight = Gauge("medops_gateway_requests_in_flight", "Requests being served now.", registry=registry)
        self.shadow_in_flight = Gauge(
            "medops_gateway_shadow_in_flight", "Shadow copies waiting for the candidate's answer.", registry=registry
        )
        self.shadow_dropped = Counter(
            "medops_gateway_shadow_dropped",
            "Shadow copies not sent because too many were already in flight.",
            registry=registry,
        )
        self.recorded = Counter("medops_gateway_recorded", "Exchanges written to the store.", registry=registry)
        self.dropped = Counter(
            "medops_gateway_record_dropped",
            "Exchanges that could not be recorded (reason: queue_full, store_unavailable, error).",
            ("reason",),
            registry=registry,
        )
        self.backpressure = Counter(
            "medops_gateway_record_backpressure_seconds",
            "Seconds chat requests waited for room in the recorder (--record-overflow backpressure).",
            registry=registry,
        )
        self.queue_depth = Gauge(
            "medops_gateway_record_queue_depth", "Exchanges waiting to be recorded.", registry=registry
        )
        self.phi_entities = Counter(
            "medops_gateway_phi_entities_redacted",
            "PHI entities replaced by placeholders before exchanges were stored, by type.",
            ("entity",),
            registry=registry,
        )
        self.online_score = Gauge(
            "medops_online_score",
            "The latest online-grading score per tag and metric (monitor_scores, refreshed by the recorder).",
            ("tag", "metric"),
            registry=registry,
        )
        for reason in ("queue_full", "store_unavailable", "error"):
            self.dropped.labels(reason)  # present (at 0) from the start, so alerts can rate() them

    def observe_request(
        self, model: str, operation: str, arm: str, status: int, duration_s: float, error_type: str | None
    ) -> None:
        labels = (model, operation, arm)
        self.requests.labels(*labels, str(status)).inc()
        self.duration.labels(*labels).observe(duration_s)
        if error_type is not None:
            self.errors.labels(*labels, error_type).inc()

    def observe_usage(self, model: str, arm: str, prompt_tokens: Any, completion_tokens: Any) -> None:
        if isinstance(prompt_tokens, int) and prompt_tokens > 0:
            self.tokens.labels(model, arm, "input").inc(prompt_tokens)
        if isinstance(completion_tokens, int) and completion_tokens > 0:
            self.tokens.labels(model, arm, "output").inc(completion_tokens)

    def set_online_scores(self, scores: list[tuple[str, str, float]]) -> None:
        for tag, metric, value in scores:
            self.online_score.labels(tag, metric).set(value)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
