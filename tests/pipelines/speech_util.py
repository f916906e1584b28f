"""Helpers for speech tests: word error rate, and chunking audio like a microphone would."""

from __future__ import annotations

import re

CONTRACTIONS = {
    "i'm": "i am",
    "it's": "it is",
    "don't": "do not",
    "you're": "you are",
    "we're": "we are",
    "that's": "that is",
    "what's": "what is",
    "i'll": "i will",
    "can't": "cannot",
}


def words(text: str) -> list[str]:
    """Lower-case words with contractions expanded, as WER normalisers do."""
    found = re.findall(r"[a-z0-9']+", text.lower().replace("-", " ").replace("\u2019", "'"))
    return " ".join(CONTRACTIONS.get(w, w) for w in found).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference length."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(1, len(ref))


def chunks(pcm: bytes, milliseconds: int = 100, rate: int = 16_000) -> list[bytes]:
    size = rate * 2 * milliseconds // 1000
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]
