"""A safe copy of an uploaded image: size-checked before decoding, re-encoded without metadata, thumbnailed."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from pipelines.media.sniff import IMAGE_FORMATS, AttachmentRefused

THUMBNAIL_MIME = "image/webp"


@dataclass(frozen=True)
class CleanImage:
    """The re-encoded image (no EXIF, XMP, ICC or text chunks), its size, and a WebP thumbnail."""

    data: bytes
    mime: str
    width: int
    height: int
    thumbnail: bytes


def clean_image(data: bytes, *, max_pixels: int, thumbnail_edge: int = 320) -> CleanImage:
    """Decode (refusing past `max_pixels`, read from the header), strip every metadata block, and re-encode
    in the same format; animations keep their first frame. Blocking: call it from a worker thread."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb guard warns first and raises only at twice its limit: make it refuse
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS)) as image:
                fmt = image.format or ""
                if image.width * image.height > max_pixels:  # judged on the header, before any decoding
                    raise _too_large(image.width, image.height, max_pixels)
                image.seek(0)
                upright = ImageOps.exif_transpose(image)  # the EXIF orientation goes with the EXIF block
                pixels = _normalised(upright, fmt)
    except AttachmentRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise AttachmentRefused("image_too_large", f"images hold at most {max_pixels} pixels", 413) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise AttachmentRefused("unsupported_attachment", f"the image cannot be decoded: {exc}") from exc
    # a fresh image from raw pixels carries no `info`: nothing of the original's metadata can be written
    fresh = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
    mime, _ = IMAGE_FORMATS[fmt]
    return CleanImage(_encode(fresh, fmt), mime, fresh.width, fresh.height, _thumbnail(fresh, thumbnail_edge))


def _too_large(width: int, height: int, max_pixels: int) -> AttachmentRefused:
    return AttachmentRefused("image_too_large", f"{width}x{height} is past the limit of {max_pixels} pixels", 413)


def _normalised(image: Image.Image, fmt: str) -> Image.Image:
    """RGB, RGBA or L: modes every encoder here writes (JPEG gets no alpha)."""
    alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if fmt == "JPEG":
        return image.convert("L" if image.mode in ("L", "1") else "RGB")
    if image.mode == "L" and not alpha:
        return image.convert("L")
    return image.convert("RGBA" if alpha else "RGB")


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=90, optimize=True)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=90)
    elif fmt == "GIF":
        image.save(out, "GIF")
    else:
        image.save(out, "PNG")  # optimize=True costs ~8x the time for ~5% fewer bytes
    return out.getvalue()


def _thumbnail(image: Image.Image, edge: int) -> bytes:
    small = image.copy()
    small.thumbnail((edge, edge))
    out = io.BytesIO()
    small.save(out, "WEBP", quality=80)
    return out.getvalue()
