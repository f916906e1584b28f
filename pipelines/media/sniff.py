"""What an attachment is, told from its bytes; the file name and the declared type are never trusted."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from PIL import Image, UnidentifiedImageError

#: Pillow format → (MIME type, the suffix a stored name gets)
IMAGE_FORMATS = {
    "PNG": ("image/png", ".png"),
    "JPEG": ("image/jpeg", ".jpg"),
    "WEBP": ("image/webp", ".webp"),
    "GIF": ("image/gif", ".gif"),
}
#: the document types ingestion reads (pipelines/rag/extract.py), by MIME type → suffix
FILE_SUFFIXES = {"application/pdf": ".pdf", "text/html": ".html", "text/markdown": ".md", "text/plain": ".txt"}
_SUFFIX_ALIASES = {".jpeg": ".jpg", ".htm": ".html", ".markdown": ".md"}
_TEXT_CONTROL = bytes(set(range(32)) - {9, 10, 12, 13})  # tab, newline, form feed and CR are text


class AttachmentRefused(ValueError):
    """An attachment we do not store, with the stable code and HTTP status that say why."""

    def __init__(self, code: str, message: str, status: int = 415) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Sniffed:
    """What the bytes are: `image` or `file`, the MIME type, and the suffix a stored name must carry."""

    kind: Literal["image", "file"]
    mime: str
    suffix: str


def sniff(data: bytes, filename: str = "") -> Sniffed:
    """The type of `data`; `AttachmentRefused("unsupported_attachment")` when it is none we accept.

    Images are identified by Pillow (header only, nothing decoded); PDFs by their `%PDF-` signature;
    text by decoding (no binary control bytes). The name only chooses between text kinds (.md).
    """
    image = _image_format(data)
    if image is not None:
        mime, suffix = IMAGE_FORMATS[image]
        return Sniffed("image", mime, suffix)
    if b"%PDF-" in data[:1024]:
        return Sniffed("file", "application/pdf", ".pdf")
    text = _text(data)
    if text is None:
        raise AttachmentRefused(
            "unsupported_attachment",
            "attachments are images (PNG, JPEG, WebP, GIF) or documents (PDF, text, Markdown, HTML)",
        )
    head = text[:1024].lstrip().lower()
    if head.startswith(("<!doctype html", "<html")):
        return Sniffed("file", "text/html", ".html")
    if _suffix(filename) == ".md":
        return Sniffed("file", "text/markdown", ".md")
    return Sniffed("file", "text/plain", ".txt")


def stored_name(filename: str, sniffed: Sniffed) -> str:
    """The client's base name with the suffix the bytes call for ("scan.png" holding a PDF → "scan.pdf")."""
    name = PurePath(filename.replace("\\", "/")).name.strip() or "attachment"
    if _suffix(name) == sniffed.suffix:
        return name
    stem = PurePath(name).stem if PurePath(name).suffix else name
    return f"{stem or 'attachment'}{sniffed.suffix}"


def _suffix(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    return _SUFFIX_ALIASES.get(suffix, suffix)


def _image_format(data: bytes) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # sizes are judged in images.py
            with Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS)) as image:
                return image.format
    except (UnidentifiedImageError, Image.DecompressionBombError):
        return _image_signature(data)
    except (OSError, ValueError, SyntaxError):
        return None


def _image_signature(data: bytes) -> str | None:
    """An image too large for Pillow to open is still an image (then refused by size, not by type)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    return None


def _text(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    head = data[:65536]
    return None if len(head.translate(None, _TEXT_CONTROL)) != len(head) else text
