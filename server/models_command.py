"""`python run.py models vosk en-us`: fetch and verify a Vosk model where the internet is reachable."""

from __future__ import annotations

import io
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

VOSK_MODELS = {
    "en-us": "vosk-model-small-en-us-0.15",
}
VOSK_BASE_URL = "https://alphacephei.com/vosk/models"
REQUIRED = ("am/final.mdl", "conf/model.conf")


def _instructions(name: str, url: str, target: Path) -> str:
    return (
        f"Could not download {url}.\n"
        f"On a machine with internet access, download that file, copy it here and unzip it so that\n"
        f"{target / name}/am/final.mdl exists, then set VOSK_MODEL_PATH={target / name} and restart.\n"
        f"Without a Vosk model Parley uses faster-whisper (tiny.en), which needs nothing more."
    )


def fetch_vosk(language: str, target: Path, base_url: str = VOSK_BASE_URL) -> int:
    """Download, check and unpack a Vosk model into `target`; print what to set, or what to do by hand."""
    name = VOSK_MODELS.get(language)
    if name is None:
        print(f"unknown language {language!r}; known: {', '.join(VOSK_MODELS)}", file=sys.stderr)
        return 2
    url = f"{base_url.rstrip('/')}/{name}.zip"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as exc:
        print(f"{exc}\n{_instructions(name, url, target)}", file=sys.stderr)
        return 1
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = set(archive.namelist())
    except zipfile.BadZipFile:
        print(f"{url} is not a zip archive\n{_instructions(name, url, target)}", file=sys.stderr)
        return 1
    missing = [f"{name}/{path}" for path in REQUIRED if f"{name}/{path}" not in members]
    if missing or any(m.startswith("/") or ".." in Path(m).parts for m in members):
        print(
            f"{url} is not the expected model (missing {missing})\n{_instructions(name, url, target)}", file=sys.stderr
        )
        return 1
    target.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target / name, ignore_errors=True)
    archive.extractall(target)
    try:
        import vosk

        vosk.SetLogLevel(-1)
        vosk.Model(str(target / name))  # the real check: Vosk loads it
    except Exception as exc:
        print(f"the model does not load: {exc}", file=sys.stderr)
        return 1
    print(f"Vosk model ready: set VOSK_MODEL_PATH={target / name}")
    return 0
