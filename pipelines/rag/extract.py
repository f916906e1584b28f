"""Text out of uploaded files (.txt, .md, .html, .pdf), page by page where pages exist.

An upload is untrusted: `extract_isolated` reads it in a child process (`python -m pipelines.rag.extract`)
with a time limit, a page limit and a memory limit, so a hostile PDF costs one killed process, not a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePath

_ROOT = str(Path(__file__).resolve().parents[2])  # where `python -m pipelines.rag.extract` is found
SUPPORTED = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}


class UnsupportedDocument(ValueError):
    """The file's type is not one we read, or its content does not parse."""

    code = "unsupported_document"


@dataclass(frozen=True)
class Page:
    """Text of one page (PDF) or of the whole document (page None)."""

    text: str
    number: int | None = None
    markdown: bool = False


def kind_of(filename: str) -> str:
    """The normalised suffix of a supported file name, or `UnsupportedDocument`."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in SUPPORTED:
        raise UnsupportedDocument(f"{filename!r}: supported types are {', '.join(sorted(SUPPORTED))}")
    return suffix


class _HTMLText(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template"}
    _BLOCK = {"p", "div", "section", "article", "li", "tr", "br", "h1", "h2", "h3", "h4", "h5", "h6", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")
            if tag[0] == "h" and tag[1:].isdigit():
                self.parts.append("#" * int(tag[1:]) + " ")  # keep headings as markdown for the chunker

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


@dataclass(frozen=True)
class ExtractLimits:
    """What reading one upload may cost (INGEST_TIMEOUT_SECONDS, INGEST_MAX_PAGES, INGEST_MAX_MEMORY_MB)."""

    seconds: float = 120.0
    max_pages: int = 2000
    memory_mb: int = 2048


def extract(filename: str, data: bytes, max_pages: int | None = None) -> list[Page]:
    """The text of a file; blocking (PDF parsing), so call it from a worker thread, or `extract_isolated`."""
    kind = kind_of(filename)
    if kind == ".pdf":
        return _pdf(data, max_pages)
    text = _decode(data)
    if kind in (".html", ".htm"):
        parser = _HTMLText()
        parser.feed(text)
        return [Page("".join(parser.parts), markdown=True)]
    return [Page(text, markdown=kind == ".md")]


def _pdf(data: bytes, max_pages: int | None) -> list[Page]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        count = len(reader.pages)
        if max_pages is not None and count > max_pages:
            raise UnsupportedDocument(f"the PDF has {count} pages; at most {max_pages} are read")
        return [Page(page.extract_text() or "", number=index) for index, page in enumerate(reader.pages, start=1)]
    except UnsupportedDocument:
        raise
    except (PdfReadError, ValueError, KeyError, RecursionError) as exc:
        raise UnsupportedDocument(f"the PDF cannot be read: {exc}") from exc


async def extract_isolated(filename: str, data: bytes, limits: ExtractLimits) -> list[Page]:
    """`extract` in a child process that is killed past `limits.seconds`; `UnsupportedDocument` says why not."""
    kind_of(filename)  # refuse unknown types without starting a process
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipelines.rag.extract",
        filename,
        str(limits.max_pages),
        str(limits.memory_mb),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": _ROOT},
    )
    try:
        async with asyncio.timeout(limits.seconds):
            out, _ = await process.communicate(data)
    except TimeoutError:
        raise UnsupportedDocument(
            f"reading the file took longer than {limits.seconds:.0f} s, so it was not indexed"
        ) from None
    finally:
        if process.returncode is None:  # timed out or cancelled: the child goes too
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    try:
        result = json.loads(out)
    except ValueError:
        result = None
    if process.returncode != 0 or not isinstance(result, dict):
        raise UnsupportedDocument(f"the file could not be read within {limits.memory_mb} MB of memory")
    if "error" in result:
        raise UnsupportedDocument(str(result["error"]))
    return [Page(**page) for page in result["pages"]]


def _main(argv: list[str]) -> int:
    """The child of `extract_isolated`: the file on stdin, `{"pages": [...]}` or `{"error": ...}` on stdout."""
    import resource

    filename, max_pages, memory_mb = argv[0], int(argv[1]), int(argv[2])
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        pages = extract(filename, sys.stdin.buffer.read(), max_pages)
        result: dict[str, object] = {"pages": [asdict(page) for page in pages]}
    except UnsupportedDocument as exc:
        result = {"error": str(exc)}
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
