"""The int8 copy of the embedding model: built once, cached, close to the shipped model, and a safe fallback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipelines.rag import quantize
from pipelines.rag.embedder import Embedder, bundled_paths
from pipelines.rag.quantize import int8_encoder
from tests.pipelines.rag_corpus import DOCUMENTS, QUESTIONS

pytestmark = pytest.mark.slow  # loads the bundled embedding model


def _texts() -> list[str]:
    passages = [text[i : i + 900] for text in DOCUMENTS.values() for i in range(0, len(text), 900)]
    return [question for question, _ in QUESTIONS] + passages


def test_int8_copy_is_built_once_fuses_attention_and_quantizes_the_matmuls(tmp_path: Path) -> None:
    source, _ = bundled_paths()
    built = int8_encoder(source, tmp_path)
    stamp = built.stat().st_mtime_ns
    again = int8_encoder(source, tmp_path)
    assert again == built and again.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [built.name]  # no build leftovers
    ops = [node.op_type for node in onnx.load(str(built)).graph.node]
    assert "DynamicQuantizeLinear" in ops or "DynamicQuantizeMatMul" in ops or "MatMulInteger" in ops
    assert "IsNaN" not in ops  # the softmax NaN guards are gone
    assert ops.count("QAttention") == 6 and ops.count("Gelu") == 6  # one of each per layer, quantized
    assert not {"Softmax", "Erf", "Transpose"} & set(ops)  # nothing of the unfused attention or GELU is left


def test_a_fusion_that_does_not_reproduce_the_model_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quantize, "_same_outputs", lambda reference, candidate: False)
    source, _ = bundled_paths()
    ops = {node.op_type for node in onnx.load(str(int8_encoder(source, tmp_path))).graph.node}
    assert "Softmax" in ops and "QAttention" not in ops and "Gelu" not in ops
    assert "MatMulInteger" in ops and "IsNaN" not in ops  # still quantized, still unguarded


async def test_int8_vectors_stay_close_to_the_shipped_model(tmp_path: Path) -> None:
    texts = _texts()
    shipped = await Embedder().embed(texts)
    int8 = await Embedder(int8_cache=tmp_path).embed(texts)
    cosine = (shipped * int8).sum(axis=1)
    print(f"\ncosine int8 vs shipped over {len(texts)} texts: min {cosine.min():.4f}, mean {cosine.mean():.4f}")
    assert cosine.min() >= 0.97 and cosine.mean() >= 0.99
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)


async def test_int8_vectors_of_a_padded_batch_match_those_of_single_texts(tmp_path: Path) -> None:
    """Ingestion embeds padded batches, queries one text: the fused attention must honour the mask. They differ a
    little even so: activations are quantized per batch, with one scale for all its rows."""
    texts = _texts()
    embedder = Embedder(int8_cache=tmp_path)
    batched = await embedder.embed(texts)
    single = np.vstack([await embedder.embed([text]) for text in texts])
    cosine = (batched * single).sum(axis=1)
    print(f"\ncosine int8 batched vs single over {len(texts)} texts: min {cosine.min():.4f}, mean {cosine.mean():.4f}")
    assert cosine.min() >= 0.98 and cosine.mean() >= 0.99


async def test_a_model_the_recipe_cannot_build_is_used_as_shipped(tmp_path: Path) -> None:
    _, tokenizer = await asyncio.to_thread(bundled_paths)
    broken = tmp_path / "not-a-model.onnx"
    await asyncio.to_thread(broken.write_bytes, b"this is not an onnx file")
    cache = tmp_path / "cache"
    embedder = Embedder(broken, tokenizer, int8_cache=cache)
    with pytest.raises(Exception, match=r"(?i)protobuf|onnx|load"):
        await embedder.load()  # the original file is what fails, with onnxruntime's own message
    assert not await asyncio.to_thread(lambda: any(cache.glob("encoder-int8-*.onnx")))
