"""Where a voice message's audio lives and how a session asks to be spoken to."""

from __future__ import annotations

import uuid
from typing import Any


def voice_of(speech_config: dict[str, Any]) -> tuple[str | None, int]:
    """The voice and words-per-minute rate a session's `speech_config` asks for."""
    voice = speech_config.get("voice")
    rate = speech_config.get("rate", 150)
    return (voice if isinstance(voice, str) else None), (min(max(rate, 80), 300) if isinstance(rate, int) else 150)


def audio_url(message_id: uuid.UUID) -> str:
    """The REST address of a voice message's recording."""
    return f"/api/v1/chat/messages/{message_id}/audio"


def tts_url(message_id: uuid.UUID) -> str:
    """The REST address of a message spoken."""
    return f"/api/v1/chat/messages/{message_id}/tts"
