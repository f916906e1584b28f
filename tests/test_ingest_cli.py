"""`python run.py ingest` from a shell: real processes on the embedded defaults."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.nodes import ROOT

pytestmark = pytest.mark.slow  # runs `run.py ingest`: a process that loads the embedding model


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "run.py"),
        *args,
        cwd=str(ROOT),
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return int(process.returncode or 0), out.decode(), err.decode()


async def test_ingest_from_the_command_line(tmp_path: Path) -> None:
    env = {"PARLEY_DATA_DIR": str(tmp_path / "data"), "JWT_SECRET": "c" * 40}
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\nThe staging server restarts every Sunday at 03:00.\n")
    bad = tmp_path / "binary.exe"
    bad.write_bytes(b"MZ")
    assert (await _run("migrate", env=env))[0] == 0
    assert (await _run("createuser", "cli_user", "--password", "long enough", env=env))[0] == 0

    code, out, err = await _run("ingest", "--user", "cli_user", str(notes), env=env)
    assert code == 0, err
    assert "notes.md: ready" in out and "1/1 chunks" in err  # the progress bar reached the end

    code, out, err = await _run("ingest", "--user", "cli_user", str(notes), str(bad), env=env)
    assert code == 1
    assert "already uploaded" in err and "binary.exe" in err and "supported types" in err
    code, _, err = await _run("ingest", "--user", "nobody", str(notes), env=env)
    assert code == 1 and "no such user" in err
