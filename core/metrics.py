"""Prometheus metrics of one app, in its own registry; several workers on a host share them through
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multi-process mode)."""

from __future__ import annotations

import ipaddress
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: latency buckets from a few milliseconds (cache hits, retrieval) to minutes (long answers)
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Every metric Parley exports; handlers and routes call into one instance made by `create_app`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge(
            "parley_socket_connections",
            "Connected Socket.IO sockets by namespace kind",
            ["namespace_kind"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.active_sessions = Gauge(
            "parley_active_sessions",
            "Chat sessions with at least one connected socket on this process",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.messages = Counter("parley_messages", "Messages stored, by type", ["message_type"], registry=r)
        self.time_to_first_token = Histogram(
            "parley_assistant_time_to_first_token_seconds",
            "From the user message being stored to the first assistant token sent",
            registry=r,
            buckets=SECONDS,
        )
        self.answer_time = Histogram(
            "parley_assistant_answer_seconds",
            "Whole assistant answers, by final status",
            ["status"],
            registry=r,
            buckets=SECONDS,
        )
        self.retrieval_time = Histogram(
            "parley_rag_retrieval_seconds", "Retrieval of sources for a question", registry=r, buckets=SECONDS
        )
        self.llm_time = Histogram(
            "parley_llm_seconds", "LLM generation time by provider", ["provider"], registry=r, buckets=SECONDS
        )
        self.stt_time = Histogram(
            "parley_stt_seconds", "Speech-to-text processing per utterance", registry=r, buckets=SECONDS
        )
        self.tts_time = Histogram("parley_tts_seconds", "Text-to-speech synthesis", registry=r, buckets=SECONDS)
        self.cache = Counter(
            "parley_cache_requests", "Cache lookups by key kind and result", ["kind", "result"], registry=r
        )
        self.rate_limited = Counter(
            "parley_rate_limit_rejections", "Requests and events refused by a rate limit", ["limit"], registry=r
        )
        self.errors = Counter(
            "parley_errors",
            "Errors answered to clients, by surface (rest, socket) and code",
            ["surface", "code"],
            registry=r,
        )

    def exposition(self) -> bytes:
        """The text format: this process's registry, or every worker's when multi-process mode is on."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def address_allowed(address: str | None, networks: tuple[str, ...]) -> bool:
    """Whether `address` lies in one of `networks` (CIDR strings)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)
