"""Images the tests draw themselves: text to read, EXIF to strip, headers that lie about their size."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"  # Debian's fonts-dejavu-core


def text_image(lines: list[str], fmt: str = "PNG", size: int = 40) -> bytes:
    """Black text on white, big enough for Tesseract."""
    font = ImageFont.truetype(FONT, size)
    width = max(int(font.getlength(line)) for line in lines) + 80
    image = Image.new("RGB", (width, (size + 24) * len(lines) + 60), "white")
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((40, 30 + index * (size + 24)), line, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def photo_with_metadata(fmt: str = "JPEG") -> bytes:
    """A photo carrying EXIF (camera, GPS, orientation) and, for PNG, a text chunk."""
    image = Image.new("RGB", (64, 32), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Industries"  # Make
    exif[0x0131] = "SecretEditor 9"  # Software
    exif[0x0112] = 6  # Orientation: rotate 90° on display
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 29.0)  # GPS latitude
    out = io.BytesIO()
    if fmt == "PNG":
        info = PngInfo()
        info.add_text("Author", "Jane Secret")
        image.save(out, "PNG", exif=exif, pnginfo=info)
    else:
        image.save(out, fmt, exif=exif)
    return out.getvalue()


def lying_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height`: a decompression bomb's calling card."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
