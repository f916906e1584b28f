"""Inline citations: `[n]` markers in an answer point at the n-th source of its prompt (1-based).

Markers that point nowhere are removed before the answer is stored; code (fenced blocks and inline
`spans`) is left alone, so `items[0]` stays code.
"""

from __future__ import annotations

import re

MARKER = re.compile(r"[ \t]*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
LINE_MARKER = re.compile(r"^\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\][ \t]*", re.M)  # "[4] The …" opening a line
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`", re.S)


def _prose_and_code(text: str) -> list[tuple[str, bool]]:
    """The text as (piece, is_code) pairs, in order."""
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in _CODE.finditer(text):
        pieces.append((text[position : match.start()], False))
        pieces.append((match.group(), True))
        position = match.end()
    pieces.append((text[position:], False))
    return pieces


def clean_citations(text: str, sources: int) -> tuple[str, list[int]]:
    """`text` without markers outside 1..`sources`, and the sorted marker numbers it still cites."""
    cited: set[int] = set()

    def keep(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
        valid = list(dict.fromkeys(n for n in numbers if 1 <= n <= sources))
        cited.update(valid)
        if not valid:
            return ""
        if valid == numbers:
            return match.group()
        spacing = match.group()[: len(match.group()) - len(match.group().lstrip(" \t"))]
        return f"{spacing}[{', '.join(map(str, valid))}]"

    def keep_line(match: re.Match[str]) -> str:
        kept = keep(match)
        return kept and kept.rstrip(" \t") + match.group()[len(match.group().rstrip(" \t")) :]

    cleaned = "".join(
        piece if code else MARKER.sub(keep, LINE_MARKER.sub(keep_line, piece)) for piece, code in _prose_and_code(text)
    )
    return cleaned, sorted(cited)


def strip_citations(text: str) -> str:
    """`text` without any marker: a past answer's markers point at sources the prompt no longer has."""
    return clean_citations(text, 0)[0]
