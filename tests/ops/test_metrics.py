"""Prometheus metrics: what they count, who may read them, and how worker processes add up."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from aiohttp import ClientSession

from core.settings import Settings
from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.helpers import Serve, ask, with_groq
from tests.nodes import running_nodes


def sample(metrics: str, name: str) -> float:
    """The value of one sample line (`name` with its labels) of the text format."""
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


async def test_metrics_count_what_happens_and_are_restricted(
    ops_settings: Settings, serve: Serve, http: ClientSession, groq: GroqFake
) -> None:
    server = await serve(with_groq(replace(ops_settings, metrics_token="scrape-secret"), groq))
    api = Api(str(server.make_url("")), http)
    alice = await api.register()
    session = await api.new_session(alice)
    response = await ask(api, alice, session["id"], "hello?")
    assert response["status"] == "complete"
    await api.call("GET", "/api/v1/chat/sessions/not-a-uuid", token=alice.token)  # a 404

    reply = await api.call("GET", "/metrics")  # loopback is in METRICS_ALLOW_FROM by default
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    metrics = reply.body
    assert sample(metrics, 'parley_messages_total{message_type="user"}') == 1
    assert sample(metrics, 'parley_messages_total{message_type="assistant"}') == 1
    assert sample(metrics, "parley_assistant_time_to_first_token_seconds_count") == 1
    assert sample(metrics, 'parley_assistant_answer_seconds_count{status="complete"}') == 1
    assert sample(metrics, 'parley_llm_seconds_count{provider="groq"}') == 1
    assert sample(metrics, "parley_rag_retrieval_seconds_count") == 1
    assert sample(metrics, 'parley_errors_total{code="not_found",surface="rest"}') == 1
    assert sample(metrics, 'parley_socket_connections{namespace_kind="chat"}') == 0  # it disconnected
    assert sample(metrics, "parley_active_sessions") == 0
    for name in ("parley_stt_seconds_count", "parley_tts_seconds_count", "parley_cache_requests_total"):
        assert name in metrics or name.removesuffix("_total") in metrics

    # outside the allowed networks, only the token opens it
    closed = await serve(
        replace(
            ops_settings, metrics_token="scrape-secret", metrics_allow_from=(), data_dir=ops_settings.data_dir / "b"
        )
    )
    other = Api(str(closed.make_url("")), http)
    assert (await other.call("GET", "/metrics")).code == "forbidden"
    assert (await other.call("GET", "/metrics", token="wrong")).code == "forbidden"
    assert (await other.call("GET", "/metrics", token="scrape-secret")).status == 200


async def test_metrics_add_up_across_worker_processes(postgres_url: str, http: ClientSession, tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {
        "DATABASE_URL": postgres_url,
        "JWT_SECRET": "metrics-secret-" + "x" * 24,
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    async with running_nodes(env, tmp_path, http, "worker") as nodes:
        for node in nodes:  # one 404 on each worker
            await Api(node.url, http).call("GET", "/api/v1/chat/sessions/not-a-uuid", token="x")
        metrics = (await Api(nodes[0].url, http).call("GET", "/metrics")).body
        assert sample(metrics, 'parley_errors_total{code="unauthorized",surface="rest"}') == 2
