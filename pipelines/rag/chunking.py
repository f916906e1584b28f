"""Split documents along their structure (pages, headings, paragraphs) into overlapping chunks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pipelines.rag.extract import Page

TARGET_CHARS = 900
OVERLAP_CHARS = 150
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Chunk:
    """A piece of a document with where it came from, for citations."""

    index: int
    text: str
    page: int | None
    heading: str | None


def _blocks(page: Page) -> Iterator[tuple[str | None, str]]:
    """(heading in force, paragraph) pairs; in markdown, a heading line opens a section anywhere."""
    heading: str | None = None
    lines: list[str] = []

    def paragraph() -> str:
        text = re.sub(r"[ \t]+", " ", "\n".join(lines)).strip()
        lines.clear()
        return text

    for line in page.text.splitlines():
        match = _HEADING.match(line.strip()) if page.markdown else None
        if match or not line.strip():
            if text := paragraph():
                yield heading, text
            if match:
                heading = match.group(2).strip()
            continue
        lines.append(line)
    if text := paragraph():
        yield heading, text


def _pieces(text: str, target: int) -> Iterator[str]:
    """A paragraph longer than `target` cut at sentence ends (or spaces).

    Positions move through the one string (no copy of the rest per cut): linear in the paragraph's length,
    where slicing off each piece made a 20 MB one-line file quadratic (~10 s holding the GIL)."""
    start, end = 0, len(text.rstrip())
    while end - start > target:
        limit = start + target
        cut = max(text.rfind(". ", start, limit), text.rfind("\n", start, limit))
        cut = cut + 1 if cut - start > target // 3 else text.rfind(" ", start, limit)
        cut = cut if cut > start else limit
        yield text[start:cut].strip()
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        yield text[start:end]


class _Builder:
    """Accumulates paragraphs of one section of one page into chunks."""

    def __init__(self, chunks: list[Chunk], page: int | None, heading: str | None, target: int, overlap: int) -> None:
        self.chunks, self.page, self.heading = chunks, page, heading
        self.target, self.overlap = target, overlap
        self.current: list[str] = []
        self.size = 0
        self.tail = ""

    def add(self, paragraph: str) -> None:
        for piece in _pieces(paragraph, self.target):
            if self.size and self.size + len(piece) > self.target:
                self.flush()
            self.current.append(piece)
            self.size += len(piece)

    def flush(self) -> None:
        if not self.current:
            return
        body = "\n\n".join(self.current)
        text = f"{self.tail} {body}".strip() if self.tail else body
        self.chunks.append(Chunk(len(self.chunks), text, self.page, self.heading))
        self.tail = body[-self.overlap :].split(" ", 1)[-1] if self.overlap else ""
        self.current, self.size = [], 0


def chunk_pages(pages: Iterable[Page], *, target: int = TARGET_CHARS, overlap: int = OVERLAP_CHARS) -> list[Chunk]:
    """Chunks of about `target` characters that never cross a page or a heading, each starting with the
    last `overlap` characters of the chunk before it in the same section."""
    chunks: list[Chunk] = []
    for page in pages:
        builder = _Builder(chunks, page.number, None, target, overlap)
        for heading, block in _blocks(page):
            if heading != builder.heading:
                builder.flush()
                builder = _Builder(chunks, page.number, heading, target, overlap)
            builder.add(block)
        builder.flush()
    return chunks
