"""The text in an image, read by Tesseract (Debian's `tesseract-ocr`) through pytesseract, off the loop."""

from __future__ import annotations

import asyncio
import io
import shutil
from concurrent.futures import Executor
from typing import Any

import pytesseract
from PIL import Image

INSTALL_HINT = "install Tesseract: apt-get install tesseract-ocr tesseract-ocr-eng (make run does)"


class OcrUnavailable(RuntimeError):
    """Tesseract or its language data is missing here; images are still stored, their text is not read."""

    code = "ocr_unavailable"


class OcrFailed(RuntimeError):
    """Tesseract ran but gave up (timeout, unreadable image)."""

    code = "ocr_failed"


class Ocr:
    """Reads text with Tesseract in a subprocess per image, waited for in `executor`, never on the loop."""

    def __init__(self, executor: Executor, *, languages: str = "eng", timeout: float = 30.0) -> None:
        self._executor = executor
        self.languages = languages
        self.timeout = timeout

    async def read(self, image: bytes) -> str:
        """The image's text (whitespace tidied); `OcrUnavailable` when Tesseract is missing."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._read, image)

    def _read(self, data: bytes) -> str:
        try:
            with Image.open(io.BytesIO(data)) as image:
                text = pytesseract.image_to_string(image.convert("RGB"), lang=self.languages, timeout=self.timeout)
        except pytesseract.TesseractNotFoundError as exc:
            raise OcrUnavailable(f"OCR is unavailable: {INSTALL_HINT}") from exc
        except pytesseract.TesseractError as exc:
            if "Failed loading language" in str(exc) or "Error opening data file" in str(exc):
                raise OcrUnavailable(f"OCR has no language data for {self.languages!r}: {INSTALL_HINT}") from exc
            raise OcrFailed(f"OCR failed: {exc}") from exc
        except RuntimeError as exc:  # pytesseract's timeout
            raise OcrFailed(f"OCR took longer than {self.timeout:.0f} s") from exc
        return "\n".join(line.strip() for line in text.splitlines() if line.strip())

    def status(self) -> dict[str, Any]:
        """Whether OCR can run here, and what to install when it cannot (looks at PATH: blocking)."""
        binary = shutil.which(pytesseract.pytesseract.tesseract_cmd)
        report: dict[str, Any] = {"engine": "tesseract", "languages": self.languages, "available": binary is not None}
        if binary is None:
            report["code"], report["reason"] = OcrUnavailable.code, INSTALL_HINT
        return report
