"""One attachment, checked and made safe before anything is stored: pure, no database, no files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from pipelines.media.images import THUMBNAIL_MIME, clean_image
from pipelines.media.sniff import AttachmentRefused, sniff, stored_name
from store.types import unstorable_text

MAX_FILENAME = 255  # the column's length


@dataclass(frozen=True)
class AttachmentLimits:
    max_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 25_000_000
    thumbnail_edge: int = 320


@dataclass(frozen=True)
class PreparedAttachment:
    """What will be stored: sanitised bytes (images re-encoded), their type, hash and thumbnail."""

    kind: Literal["image", "file"]
    filename: str
    content_type: str
    data: bytes
    sha256: str
    thumbnail: bytes | None = None
    thumbnail_type: str | None = None
    #: what the client said the type was (kept for the audit trail, never used to decide)
    declared_type: str | None = None

    @property
    def size_bytes(self) -> int:
        return len(self.data)


def prepare_attachment(
    data: bytes, filename: str, declared_mime: str | None, limits: AttachmentLimits
) -> PreparedAttachment:
    """Sniff, validate and sanitise an upload; raises `AttachmentRefused` with a stable code.

    Blocking (image decoding): call it from a worker thread. PDFs are not parsed here: their page
    and time limits apply when ingestion extracts them, in its own process.
    """
    if not data:
        raise AttachmentRefused("validation_error", "the attachment is empty", 422)
    if len(data) > limits.max_bytes:
        raise AttachmentRefused("payload_too_large", f"attachments hold at most {limits.max_bytes} bytes", 413)
    if unstorable_text(filename) is not None:
        raise AttachmentRefused("validation_error", "file names hold no NUL characters or unpaired surrogates", 422)
    sniffed = sniff(data, filename)
    name = stored_name(filename, sniffed)
    if len(name) > MAX_FILENAME:
        raise AttachmentRefused("validation_error", f"file names hold at most {MAX_FILENAME} characters", 422)
    if sniffed.kind == "file":
        return PreparedAttachment(
            "file", name, sniffed.mime, data, hashlib.sha256(data).hexdigest(), declared_type=declared_mime
        )
    clean = clean_image(data, max_pixels=limits.max_pixels, thumbnail_edge=limits.thumbnail_edge)
    return PreparedAttachment(
        "image",
        name,
        clean.mime,
        clean.data,
        hashlib.sha256(clean.data).hexdigest(),
        thumbnail=clean.thumbnail,
        thumbnail_type=THUMBNAIL_MIME,
        declared_type=declared_mime,
    )
