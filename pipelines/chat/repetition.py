"""Stop an answer where it starts repeating itself, without ever showing the repetition.

Small models loop ("So, to summarize: …" again and again). `LoopGuard` sits between the model's stream and
the user: it releases text only once that text cannot turn out to be the start of a repetition, and it
ends the answer at the first repeated sentence or repeated run of `ngram` words. What it released is
exactly what the answer keeps, so the streamed deltas and the stored content agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import pairwise

SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)|\n")
WORD = re.compile(r"\w+")
MARKER = re.compile(r"\[\d{1,3}(?:\s*[,-]\s*\d{1,3})*\]")
FENCE = "```"
MIN_WORDS = 3  # shorter "sentences" ("Yes.", "- item") may repeat
_TRAILING = " \t\r\n,;:-\u2013\u2014"
_OPEN_TAIL = re.compile(r"(?:\w+|\[[\d\s,-]*)$")  # a word or a citation marker that may go on
_OPEN_MARKER = re.compile(r"\[[\d\s,-]*$")
_LONGEST_WORD = 200


def normalize(sentence: str) -> str:
    """Lower-case words only: markers, punctuation and spacing do not make a sentence new."""
    return " ".join(WORD.findall(MARKER.sub(" ", sentence).lower()))


def split_sentences(text: str) -> list[str]:
    """`text` cut after each sentence end (and each line end), pieces kept whole."""
    bounds = [0, *(m.end() for m in SENTENCE_END.finditer(text)), len(text)]
    return [text[a:b] for a, b in pairwise(bounds) if b > a]


def _in_code(text: str, position: int) -> bool:
    return text.count(FENCE, 0, position) % 2 == 1


class _Fences:
    """Whether positions (asked in increasing order) fall inside a ``` block, counting each fence once."""

    def __init__(self) -> None:
        self._position = 0
        self._count = 0

    def inside(self, text: str, position: int) -> bool:
        self._count += text.count(FENCE, self._position, position)
        self._position = max(self._position, position)
        return self._count % 2 == 1


class LoopGuard:
    """Feed it the model's deltas; it returns the text that may be shown and says when to stop."""

    def __init__(
        self,
        seen: Iterable[str] = (),
        *,
        ngram: int = 8,
        max_sentences: int | None = None,
        fold_numbers: bool = False,
    ) -> None:
        """`seen`: text shown before (the quoted evidence, earlier answers) whose sentences must not come again;
        `fold_numbers`: runs of words that differ only in their numbers repeat too ("* (1) * (2) * (3) …",
        a small model's loop; a hosted model's "Room 101 costs 50 €. Room 102 costs 60 €." is a fine list)."""
        self._ngram = ngram
        self._fold_numbers = fold_numbers
        self._max_sentences = max_sentences
        known = (normalize(piece) for text in seen for piece in split_sentences(text))
        self._sentences = {n for n in known if len(n.split()) >= MIN_WORDS}
        self._word_fences, self._sentence_fences = _Fences(), _Fences()
        self._longest = max(map(len, self._sentences), default=0)
        self._text = ""
        self._released = 0
        self._sentence_start = 0
        self._sentence_scan = 0
        self._sentence_count = 0
        self._word_scan = 0
        self._words: list[str] = []
        self._starts: list[int] = []
        self._first_seen: dict[tuple[str, ...], int] = {}  # every run of 1..ngram words -> where it first began
        self.stopped = False
        self.reason: str | None = None  # "repetition" or "budget" once stopped

    @property
    def text(self) -> str:
        """Everything released so far."""
        return self._text[: self._released]

    def feed(self, delta: str) -> str:
        """Take a delta; return the text that is now safe to show (maybe empty)."""
        if self.stopped or not delta:
            return ""
        self._text += delta
        cut = self._scan()
        if cut is not None:
            return self._stop_at(cut)
        return self._release(self._hold())

    def flush(self) -> str:
        """The stream ended: release what was held back, unless it repeats."""
        if self.stopped:
            return ""
        self._text += "\n"  # closes the last word and sentence
        cut = self._scan()
        if cut is not None:
            return self._stop_at(cut)
        self.stopped = True
        return self._release(len(self._text) - 1)  # all but the "\n" added above

    def _scan(self) -> int | None:
        """Scan the words and sentences the new text completed; where to cut when one repeats (or the
        sentence budget is spent)."""
        cuts = [c for c in (self._scan_words(), self._scan_sentences()) if c is not None]
        return min(cuts) if cuts else None

    def _scan_words(self) -> int | None:
        for match in WORD.finditer(self._text, self._word_scan):
            if match.end() == len(self._text):
                break  # the word may go on in the next delta
            self._word_scan = match.end()
            if self._word_fences.inside(self._text, match.start()):
                continue
            word = match.group().lower()
            self._words.append("0" if self._fold_numbers and word.isdigit() else word)
            self._starts.append(match.start())
            count = len(self._words)
            for size in range(1, min(self._ngram, count) + 1):
                gram = tuple(self._words[count - size :])
                first = self._first_seen.setdefault(gram, count - size)
                if size == self._ngram and first < count - size:
                    self.reason = "repetition"
                    return self._starts[count - size]
        return None

    def _scan_sentences(self) -> int | None:
        # a sentence end needs the character after it: look again from just before the last text's end
        scan_from = max(self._sentence_start, self._sentence_scan)
        self._sentence_scan = max(self._sentence_start, len(self._text) - 8)
        for match in SENTENCE_END.finditer(self._text, scan_from):
            start, end = self._sentence_start, match.end()
            self._sentence_start = end
            if self._sentence_fences.inside(self._text, start):
                continue
            sentence = normalize(self._text[start:end])
            if len(sentence.split()) < MIN_WORDS:
                continue
            if sentence in self._sentences:
                self.reason = "repetition"
                return start + (len(self._text[start:end]) - len(self._text[start:end].lstrip()))
            self._sentences.add(sentence)
            self._longest = max(self._longest, len(sentence))
            self._sentence_count += 1
            if self._max_sentences and self._sentence_count >= self._max_sentences:
                self.reason = "budget"
                return end
        return None

    def _hold(self) -> int:
        """Where held-back text begins: a partial word, a run of words seen before, a sentence that so far
        matches an earlier one, and trailing whitespace all wait for more text."""
        hold = len(self._text.rstrip(_TRAILING))
        tail = _OPEN_TAIL.search(self._text, max(0, hold - _LONGEST_WORD), hold)
        if tail is not None:
            hold = tail.start()
        count = len(self._words)
        for size in range(min(self._ngram - 1, count), 0, -1):
            if self._first_seen.get(tuple(self._words[count - size :]), count) < count - size:
                hold = min(hold, self._starts[count - size])
                break
        partial = self._text[self._sentence_start :]
        # (a partial sentence far longer than any known one cannot be one of them: skip the work)
        if len(partial) <= 2 * self._longest + 64 and self._repeats_so_far(normalize(_OPEN_MARKER.sub("", partial))):
            hold = min(hold, self._sentence_start)
        return len(self._text[:hold].rstrip(_TRAILING))

    def _repeats_so_far(self, partial: str) -> bool:
        return any(seen.startswith(partial) for seen in self._sentences)

    def _release(self, upto: int) -> str:
        upto = max(upto, self._released)
        released = self._text[self._released : upto]
        self._released = upto
        return released

    def _stop_at(self, cut: int) -> str:
        self.stopped = True
        return self._release(len(self._text[:cut].rstrip(_TRAILING)))


def drop_repeated_sentences(text: str) -> str:
    """The text without any sentence that already appeared in it (code blocks are left alone)."""
    seen: set[str] = set()
    kept: list[str] = []
    start = 0
    for piece in split_sentences(text):
        sentence = normalize(piece)
        in_code = _in_code(text, start)
        start += len(piece)
        if not in_code and len(sentence.split()) >= MIN_WORDS:
            if sentence in seen:
                continue
            seen.add(sentence)
        kept.append(piece)
    return "".join(kept)
