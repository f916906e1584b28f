"""The former layout (qdrant-client local mode under `<data dir>/qdrant`, a collection per owner), found and
removed: its vectors are rebuilt from the stored files by `python run.py reindex`."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.rag.vectors import VectorStore
from pipelines.rag.vectors.server import ServerStore

LOCAL_MODE_FOLDER = "qdrant"
REINDEX = "python run.py reindex"


def find_legacy(data_dir: Path, store: VectorStore) -> list[str]:
    """What of the former layout is still there (blocking)."""
    found = []
    folder = data_dir / LOCAL_MODE_FOLDER
    if (folder / "meta.json").exists() or (folder / "collection").is_dir():
        found.append(f"the local-mode folder {folder}")
    if isinstance(store, ServerStore):
        found += [f"the server collection {name}" for name in store.legacy_collections()]
    return found


def remove_legacy(data_dir: Path, store: VectorStore) -> list[str]:
    """Delete the former layout's vectors (after a reindex rebuilt them); returns what went."""
    found = find_legacy(data_dir, store)
    if found:
        shutil.rmtree(data_dir / LOCAL_MODE_FOLDER, ignore_errors=True)
        if isinstance(store, ServerStore):
            for name in store.legacy_collections():
                store.client.delete_collection(name)
    return found


def warning(found: list[str]) -> str:
    return (
        f"vectors in the former layout (a collection per user): {', '.join(found)}; searches will not find "
        f"those documents until `{REINDEX}` rebuilds their vectors from the stored files"
    )
