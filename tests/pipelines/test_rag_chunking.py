"""Extraction of the supported formats and structure-following chunking."""

from __future__ import annotations

import itertools

import pytest

from pipelines.rag.chunking import chunk_pages
from pipelines.rag.extract import Page, UnsupportedDocument, extract
from tests.pipelines.pdfgen import make_pdf


def test_pdf_pages_are_kept() -> None:
    data = make_pdf([["First page about apples."], ["Second page about pears."], ["Third about plums."]])
    pages = extract("fruit.pdf", data)
    assert [p.number for p in pages] == [1, 2, 3]
    assert "apples" in pages[0].text and "pears" in pages[1].text
    chunks = chunk_pages(pages)
    assert [(c.page, c.text) for c in chunks][1] == (2, "Second page about pears.")


def test_html_drops_scripts_and_keeps_headings() -> None:
    html = (
        b"<html><head><script>evil()</script><style>p{}</style></head><body><h1>Guide</h1>"
        b"<p>Step one &amp; two.</p><h2>More</h2><p>Step three.</p></body></html>"
    )
    chunks = chunk_pages(extract("guide.html", html))
    assert [(c.heading, c.text) for c in chunks] == [("Guide", "Step one & two."), ("More", "Step three.")]


def test_markdown_sections_paragraphs_and_overlap() -> None:
    long_section = " ".join(f"Sentence {i} of the install section." for i in range(120))
    text = f"# Intro\nShort intro.\n\n## Install\n{long_section}\n## Use\nOpen the page."
    chunks = chunk_pages([Page(text, markdown=True)], target=400, overlap=80)
    headings = [c.heading for c in chunks]
    assert headings[0] == "Intro" and headings[-1] == "Use" and headings.count("Install") >= 5
    install = [c for c in chunks if c.heading == "Install"]
    assert all(len(c.text) <= 400 + 80 + 1 for c in install)
    for before, after in itertools.pairwise(install):  # each starts with the end of the one before
        assert after.text[:40] in before.text
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert " ".join(c.text for c in install).count("Sentence 119 ") == 1


def test_unsupported_and_broken_files_are_refused() -> None:
    with pytest.raises(UnsupportedDocument, match="supported types"):
        extract("photo.exe", b"MZ")
    with pytest.raises(UnsupportedDocument):
        extract("broken.pdf", b"%PDF-1.4 not really")
    assert extract("latin.txt", "café".encode("latin-1"))[0].text == "café"
