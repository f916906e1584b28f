"""Scenario 8: the offline model (SmolLM2-135M on llama.cpp) in one ten-turn conversation about uploaded
documents, through `POST /rag-query` over SSE on a real node: time to the first token (the quoted evidence),
time to the model's own first token, and the whole answer, at turns 1, 5 and 10. Follow-ups must not slow
down: the prompt keeps a stable prefix that llama.cpp reuses (docs/rag.md)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from bench import procs
from bench.context import Context
from bench.report import Result, Table

LICENSES = procs.ROOT / "tests" / "pipelines" / "fixtures" / "licenses"
DOCUMENTS = {
    "orbis-warranty.md": """# Orbis laptop warranty
Every Orbis laptop comes with a two-year limited warranty that covers manufacturing defects in the
motherboard, screen and keyboard. Battery wear is covered only during the first twelve months.
## Claims
To make a claim, ship the laptop to the Rotterdam repair centre with the original receipt. Repairs take
about ten working days. Accidental damage such as spilled coffee is never covered.""",
    "aurora-train.md": """# The Aurora night train
The Aurora night train leaves Vienna at 21:40 and arrives in Hamburg at 09:15. Sleeper cabins hold two
beds and include breakfast. Bicycles travel in the last carriage if booked 48 hours in advance.""",
    "sourdough.md": """# Sourdough bread
Feed the starter twelve hours before baking. Mix 500 g flour, 350 g water and 100 g active starter, rest
for an hour, then add 10 g salt. Bulk ferment for five hours with four sets of stretch and folds.
Bake at 250 degrees in a covered Dutch oven for twenty minutes, then uncovered for twenty-five.""",
}
CONVERSATION = (
    "How long is the Orbis laptop warranty?",
    "Does it cover the battery?",
    "Summarize the Apache license.",
    "List the conditions for redistributing the software.",
    "When does the Aurora night train leave Vienna?",
    "Can I take my bicycle?",
    "What does the MPL say about patents?",
    "How long does the sourdough bake?",
    "And at what temperature?",
    "Where do I send the laptop for a warranty claim?",
)
REPORTED = (1, 5, 10)


async def _upload(http: aiohttp.ClientSession, url: str, headers: dict[str, str], name: str, data: bytes) -> str:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name)
    async with http.post(f"{url}/api/v1/documents", data=form, headers=headers) as response:
        body = await response.json()
        if response.status not in (200, 202):
            raise RuntimeError(f"upload {name}: {response.status} {body}")
        return str(body["id"])


async def _wait_ready(http: aiohttp.ClientSession, url: str, headers: dict[str, str], ids: list[str]) -> None:
    async with asyncio.timeout(600):
        for document_id in ids:
            while True:
                async with http.get(f"{url}/api/v1/documents/{document_id}", headers=headers) as response:
                    status = (await response.json())["status"]
                if status == "ready":
                    break
                if status == "failed":
                    raise RuntimeError(f"document {document_id} failed to ingest")
                await asyncio.sleep(0.2)


async def _ask(http: aiohttp.ClientSession, url: str, headers: dict[str, str], session: str, q: str) -> dict[str, Any]:
    """One turn over SSE: the first token and the whole answer timed on the client, the model's first token as
    the server measured it."""
    started = time.perf_counter()
    tokens: list[tuple[float, str]] = []
    final: dict[str, Any] = {}
    path = f"{url}/api/v1/chat/sessions/{session}/rag-query"
    async with http.post(path, json={"query": q}, headers={**headers, "Accept": "text/event-stream"}) as response:
        if response.status != 200:
            raise RuntimeError(f"rag-query: {response.status} {await response.text()}")
        event = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                if event == "token":
                    tokens.append((time.perf_counter() - started, data["delta"]))
                elif event == "final":
                    final = data
    total = time.perf_counter() - started
    timings = final.get("timings") or {}
    message = final.get("message") or {}
    return {
        "question": q,
        "first_token_s": tokens[0][0] if tokens else float("nan"),
        "total_s": total,
        # measured by the server: the model's first token also when the loop guard held all of its text back
        "model_first_token_s": timings.get("model_first_token", float("nan")),
        "server_first_token_s": timings.get("first_token", float("nan")),
        "cached_prompt_tokens": timings.get("cached_prompt_tokens"),
        "content": message.get("content", ""),
        "citations": (message.get("rag_context") or {}).get("citations"),
    }


async def _conversation(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        token, _ = await procs.register(http, url, "offline-bench")
        headers = {"Authorization": f"Bearer {token}"}
        ids = [await _upload(http, url, headers, name, text.encode()) for name, text in DOCUMENTS.items()]
        for path in sorted(LICENSES.glob("*.txt")) if LICENSES.is_dir() else []:
            ids.append(await _upload(http, url, headers, path.name, path.read_bytes()))
        await _wait_ready(http, url, headers, ids)
        warm, session = await procs.create_sessions(http, url, token, 2)
        await _ask(http, url, headers, warm, "Warm up: what is this?")  # loads the model and the embedder
        return [await _ask(http, url, headers, session, q) for q in CONVERSATION]


async def run(ctx: Context) -> Result:
    data_dir = ctx.log_dir / "offline"
    data_dir.mkdir(exist_ok=True)
    env = procs.parley_env(data_dir, None, redis=False, extra={"LLM_PROVIDERS": "offline"})
    await procs.migrate(env, ctx.log_dir)
    node = await procs.start_parley("offline", env, ctx.log_dir)
    try:
        turns = await _conversation(node.url)
    finally:
        await node.stop()
    result = Result("offline")
    table = Table(
        "8. Offline model, one conversation (SmolLM2-135M, llama.cpp, SSE rag-query; seconds on the client)",
        ["turn", "first token s", "model's first token s (server)", "whole answer s", "answer chars", "citations"],
    )
    for number in REPORTED:
        turn = turns[number - 1]
        citations = ",".join(map(str, turn["citations"] or [])) or "-"
        timings = (turn["first_token_s"], turn["model_first_token_s"], turn["total_s"])
        table.add(number, *timings, len(turn["content"]), citations)
    result.tables.append(table)
    first, last = turns[0], turns[-1]
    ratio = last["first_token_s"] / first["first_token_s"]
    result.target("first token, turn 10 / turn 1", ratio, "<= 1.5", ratio <= 1.5)
    result.target("first token at turn 10, s", last["first_token_s"], "<= 1.5", last["first_token_s"] <= 1.5)
    model_ratio = last["model_first_token_s"] / first["model_first_token_s"]
    result.target("model's first token, turn 10 / turn 1", model_ratio, "<= 1.5", model_ratio <= 1.5)
    result.notes.append(
        "the first token is the quoted evidence (or the 'found nothing' notice) the server sends before the model "
        "starts; the model's first token follows once llama.cpp has read the new part of the prompt (server-side, "
        "from the start of the turn, so it includes retrieval and the evidence scoring)"
    )
    result.data = {"turns": turns}
    (ctx.results / "offline-answers.md").write_text(
        "\n\n".join(f"**{t['question']}**\n\n{t['content']}" for t in turns) + "\n"
    )
    return result
