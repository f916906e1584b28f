"""Attachments before storage: types told from bytes, bomb limits, metadata stripped, text read by OCR."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytesseract
import pytest
from PIL import Image

from pipelines.media.ocr import Ocr, OcrUnavailable
from pipelines.media.prepare import AttachmentLimits, prepare_attachment
from pipelines.media.sniff import AttachmentRefused, sniff
from tests.pipelines.media_util import lying_png, photo_with_metadata, text_image
from tests.pipelines.pdfgen import make_pdf

LIMITS = AttachmentLimits(max_bytes=2 * 1024 * 1024, max_pixels=4_000_000)


def _refused(data: bytes, name: str, limits: AttachmentLimits = LIMITS) -> AttachmentRefused:
    with pytest.raises(AttachmentRefused) as caught:
        prepare_attachment(data, name, None, limits)
    return caught.value


def test_a_png_name_holding_a_pdf_is_a_file_named_for_what_it_is() -> None:
    prepared = prepare_attachment(make_pdf([["Hello"]]), "holiday.png", "image/png", LIMITS)
    assert (prepared.kind, prepared.content_type, prepared.filename) == ("file", "application/pdf", "holiday.pdf")
    assert prepared.thumbnail is None and prepared.declared_type == "image/png"


def test_an_image_named_like_a_document_is_an_image() -> None:
    prepared = prepare_attachment(text_image(["hi"], "JPEG"), "notes.txt", "text/plain", LIMITS)
    assert (prepared.kind, prepared.content_type, prepared.filename) == ("image", "image/jpeg", "notes.jpg")


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, "cat.png"),  # a program dressed as a picture
        (b"PK\x03\x04" + b"\x00\xff" * 300, "report.pdf"),  # a zip archive dressed as a PDF
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "broken.png"),  # a PNG signature and nothing readable
    ],
)
def test_bytes_of_no_accepted_type_are_refused_whatever_the_name(data: bytes, name: str) -> None:
    refusal = _refused(data, name)
    assert (refusal.code, refusal.status) == ("unsupported_attachment", 415)


@pytest.mark.parametrize(
    ("data", "name", "mime", "stored"),
    [
        (b"plain words\nand more\n", "a.txt", "text/plain", "a.txt"),
        ("# Title\n\nUnicode: fine ✓ é".encode(), "readme.md", "text/markdown", "readme.md"),
        (b"  <!DOCTYPE html><html><body><p>x</p></body></html>", "page.txt", "text/html", "page.html"),
        (b"no suffix at all", "notes", "text/plain", "notes.txt"),
        (b"dir parts go", "../../etc/passwd", "text/plain", "passwd.txt"),
    ],
)
def test_text_kinds(data: bytes, name: str, mime: str, stored: str) -> None:
    prepared = prepare_attachment(data, name, None, LIMITS)
    assert (prepared.kind, prepared.content_type, prepared.filename) == ("file", mime, stored)


def test_text_with_binary_control_bytes_is_not_text() -> None:
    assert _refused(b"looks like text\x00\x01\x02 but is not", "a.txt").code == "unsupported_attachment"


def test_size_limit_and_empty() -> None:
    big = b"a" * (LIMITS.max_bytes + 1)
    assert (_refused(big, "a.txt").code, _refused(big, "a.txt").status) == ("payload_too_large", 413)
    assert _refused(b"", "a.txt").code == "validation_error"


def test_images_past_the_pixel_limit_are_refused_before_decoding() -> None:
    refusal = _refused(text_image(["wide"]), "a.png", AttachmentLimits(max_pixels=1000))
    assert (refusal.code, refusal.status) == ("image_too_large", 413)


@pytest.mark.parametrize("side", [20_000, 100_000])  # past Pillow's warning threshold, and past its error one
def test_a_decompression_bomb_is_refused_not_warned_about(side: int) -> None:
    bomb = lying_png(side, side)
    assert sniff(bomb).kind == "image"
    refusal = _refused(bomb, "bomb.png", AttachmentLimits(max_pixels=10**12))  # Pillow's own guard speaks
    assert (refusal.code, refusal.status) == ("image_too_large", 413)
    assert _refused(bomb, "bomb.png").code == "image_too_large"  # and ours, lower


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_exif_and_other_metadata_are_stripped(fmt: str, mime: str) -> None:
    original = photo_with_metadata(fmt)
    with Image.open(io.BytesIO(original)) as before:
        assert before.getexif().get(0x010F) == "SpyCam Industries"  # the test image does carry it
    prepared = prepare_attachment(original, f"photo.{fmt.lower()}", None, LIMITS)
    assert prepared.content_type == mime
    for secret in (b"SpyCam", b"SecretEditor", b"Jane Secret", b"Exif\x00\x00"):
        assert secret not in prepared.data
    with Image.open(io.BytesIO(prepared.data)) as after:
        assert dict(after.getexif()) == {} and "exif" not in after.info and "Author" not in after.info
        assert after.size == (32, 64)  # the orientation was applied before it was dropped
    assert prepared.thumbnail is not None
    with Image.open(io.BytesIO(prepared.thumbnail)) as thumb:
        assert thumb.format == "WEBP" and max(thumb.size) <= LIMITS.thumbnail_edge


def test_an_animation_keeps_its_first_frame_and_a_big_image_gets_a_small_thumbnail() -> None:
    frames = [Image.new("RGB", (400, 200), colour) for colour in ("red", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], comment=b"secret comment")
    prepared = prepare_attachment(out.getvalue(), "anim.gif", None, LIMITS)
    assert prepared.content_type == "image/gif" and b"secret comment" not in prepared.data
    with Image.open(io.BytesIO(prepared.data)) as gif:
        assert getattr(gif, "n_frames", 1) == 1
    with Image.open(io.BytesIO(prepared.thumbnail or b"")) as thumb:
        assert thumb.size == (320, 160)


@pytest.fixture
def ocr() -> Iterator[Ocr]:
    executor = ThreadPoolExecutor(max_workers=1)
    yield Ocr(executor, timeout=60)
    executor.shutdown()


async def test_ocr_reads_text_the_test_rendered(ocr: Ocr) -> None:
    image = text_image(["The access code is 4821-ZEBRA", "Meeting room: Falcon"])
    text = await ocr.read(prepare_attachment(image, "shot.png", None, LIMITS).data)
    assert "4821-ZEBRA" in text and "Falcon" in text


async def test_without_tesseract_ocr_says_what_is_missing(ocr: Ocr, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    with pytest.raises(OcrUnavailable) as missing:
        await ocr.read(text_image(["x"]))
    assert missing.value.code == "ocr_unavailable" and "tesseract-ocr" in str(missing.value)
    status = await asyncio.to_thread(ocr.status)
    assert status["available"] is False and status["code"] == "ocr_unavailable"
