"""Text out of uploaded files (.txt, .md, .html, .pdf), page by page where pages exist."""

from __future__ import annotations

import io
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath

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


def extract(filename: str, data: bytes) -> list[Page]:
    """The text of a file; blocking (PDF parsing), so call it from a worker thread."""
    kind = kind_of(filename)
    if kind == ".pdf":
        return _pdf(data)
    text = _decode(data)
    if kind in (".html", ".htm"):
        parser = _HTMLText()
        parser.feed(text)
        return [Page("".join(parser.parts), markdown=True)]
    return [Page(text, markdown=kind == ".md")]


def _pdf(data: bytes) -> list[Page]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        return [Page(page.extract_text() or "", number=index) for index, page in enumerate(reader.pages, start=1)]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise UnsupportedDocument(f"the PDF cannot be read: {exc}") from exc
