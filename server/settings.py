"""Settings read once from the environment (and an optional `.env`)."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from store.crypto import ContentCipher, EncryptionError

log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be a boolean (true/false), got {raw!r}")


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _networks(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    networks = _list(env, name, default)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise SettingsError(f"{name}: {network!r} is not an address or network") from exc
    return networks


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or default).lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw).expanduser() if raw else None


def _jwt_secret(env: Mapping[str, str], data_dir: Path) -> str:
    """The configured secret, or one generated once into the data dir (embedded use only)."""
    configured = env.get("JWT_SECRET")
    if configured:
        if len(configured) < 32:
            raise SettingsError("JWT_SECRET must be at least 32 characters")
        return configured
    path = data_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    log.warning("JWT_SECRET is not set: generated one into %s (set JWT_SECRET in production)", path)
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


@dataclass(frozen=True)
class Settings:
    """Every knob of a Parley process; see docs/configuration.md."""

    data_dir: Path
    database_url: str
    jwt_secret: str = field(repr=False)
    redis_url: str | None = None
    qdrant_url: str | None = None
    llm_providers: tuple[str, ...] = ("offline",)
    host: str = "127.0.0.1"
    port: int = 8000
    jwt_ttl_seconds: int = 3600
    #: a login's absolute lifetime: refreshed tokens never outlive it (then one logs in again)
    login_lifetime_seconds: int = 30 * 24 * 3600
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576
    max_message_chars: int = 8000
    db_pool_size: int = 10
    db_echo: bool = False
    log_level: str = "INFO"
    groq_api_key: str | None = field(default=None, repr=False)
    groq_base_url: str | None = None
    groq_model: str = "llama-3.1-8b-instant"
    llm_max_tokens: int = 512
    local_llm_model_path: Path | None = None
    qdrant_api_key: str | None = field(default=None, repr=False)
    gemini_api_key: str | None = field(default=None, repr=False)
    gemini_base_url: str | None = None
    gemini_model: str = "gemini-2.0-flash"
    gemini_api_version: str | None = None
    llm_first_token_timeout: float = 20.0
    llm_total_timeout: float = 120.0
    llm_max_retries: int = 1
    embedding_model_path: Path | None = None
    embedding_tokenizer_path: Path | None = None
    document_max_bytes: int = 20 * 1024 * 1024
    #: all of one user's uploads together
    document_quota_bytes: int = 256 * 1024 * 1024
    #: reading one upload (a child process): wall time, pages, memory
    ingest_timeout_seconds: float = 120.0
    ingest_max_pages: int = 2000
    ingest_max_memory_mb: int = 2048
    #: documents ingested at once on this node, and of one user
    ingest_concurrency: int = 2
    ingest_concurrency_per_user: int = 1
    vosk_model_path: Path | None = None
    whisper_model_path: Path | None = None
    max_utterance_seconds: int = 60
    max_audio_chunk_bytes: int = 64 * 1024
    #: an open utterance whose client sends no audio for this long is dropped (`utterance_timeout`)
    utterance_idle_seconds: float = 10.0
    #: seconds of one user's audio that may wait for recognition at once, sockets and uploads together
    stt_queued_seconds_per_user: int = 120
    audio_seconds_per_minute: int = 120
    socket_max_message_bytes: int = 16 * 1024 * 1024
    #: bytes waiting to be written to one socket before its client counts as not reading and is disconnected
    socket_max_queued_bytes: int = 8 * 1024 * 1024
    auto_answer: bool = True
    #: how long a dead node's answer keeps its session busy before another node marks it failed
    turn_lease_seconds: float = 30.0
    #: requests, connects and messages per minute, per user and per client address (0 turns one off)
    rest_per_minute: int = 600
    rest_per_minute_ip: int = 1200
    connects_per_minute: int = 60
    connects_per_minute_ip: int = 300
    messages_per_minute: int = 30
    messages_per_minute_ip: int = 120
    audio_seconds_per_minute_ip: int = 600
    #: failed logins per 15 minutes, per username and per client address
    login_failures_per_username: int = 10
    login_failures_per_ip: int = 50
    #: take the client address from X-Forwarded-For (set it only behind a proxy that sets that header)
    trust_forwarded_for: bool = False
    cache_max_entries: int = 10_000
    metrics_token: str | None = field(default=None, repr=False)
    metrics_allow_from: tuple[str, ...] = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
    #: base64 AES-256 key; old keys stay readable for rotation
    content_encryption_key: str | None = field(default=None, repr=False)
    content_encryption_old_keys: tuple[str, ...] = field(default=(), repr=False)
    log_format: str = "json"

    @property
    def is_sqlite(self) -> bool:
        """True when the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
        """Build settings from `env` (default: os.environ) layered over an optional `.env` file."""
        merged: dict[str, str] = {}
        if dotenv is not None and dotenv.is_file():
            merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        merged.update(os.environ if env is None else env)

        data_dir = Path(merged.get("PARLEY_DATA_DIR") or "./data").resolve()
        database_url = merged.get("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'parley.db'}"
        if database_url.startswith(("postgres://", "postgresql://")):
            database_url = "postgresql+asyncpg://" + database_url.split("://", 1)[1]
        if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise SettingsError("DATABASE_URL must be sqlite+aiosqlite://… or postgresql+asyncpg://…")
        key, old_keys = merged.get("CONTENT_ENCRYPTION_KEY") or None, _list(merged, "CONTENT_ENCRYPTION_OLD_KEYS", ())
        if key is not None or old_keys:
            try:
                ContentCipher(key or "", old_keys)
            except EncryptionError as exc:
                raise SettingsError(f"CONTENT_ENCRYPTION_KEY / CONTENT_ENCRYPTION_OLD_KEYS: {exc}") from exc
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            jwt_secret=_jwt_secret(merged, data_dir),
            redis_url=merged.get("REDIS_URL") or None,
            qdrant_url=merged.get("QDRANT_URL") or None,
            llm_providers=_list(merged, "LLM_PROVIDERS", ("offline",)),
            host=merged.get("HOST") or "127.0.0.1",
            port=_int(merged, "PORT", 8000, minimum=0),
            jwt_ttl_seconds=_int(merged, "JWT_TTL_SECONDS", 3600, minimum=60),
            login_lifetime_seconds=_int(merged, "LOGIN_LIFETIME_SECONDS", 30 * 24 * 3600, minimum=60),
            cors_origins=_list(merged, "CORS_ORIGINS", ()),
            max_body_bytes=_int(merged, "MAX_BODY_BYTES", 1_048_576, minimum=1024),
            max_message_chars=_int(merged, "MAX_MESSAGE_CHARS", 8000, minimum=1),
            db_pool_size=_int(merged, "DB_POOL_SIZE", 10, minimum=1),
            db_echo=_bool(merged, "DB_ECHO", False),
            log_level=(merged.get("LOG_LEVEL") or "INFO").upper(),
            groq_api_key=merged.get("GROQ_API_KEY") or None,
            groq_base_url=merged.get("GROQ_BASE_URL") or None,
            groq_model=merged.get("GROQ_MODEL") or "llama-3.1-8b-instant",
            llm_max_tokens=_int(merged, "LLM_MAX_TOKENS", 512, minimum=1),
            local_llm_model_path=_path(merged, "LOCAL_LLM_MODEL_PATH"),
            qdrant_api_key=merged.get("QDRANT_API_KEY") or None,
            gemini_api_key=merged.get("GEMINI_API_KEY") or None,
            gemini_base_url=merged.get("GEMINI_BASE_URL") or None,
            gemini_model=merged.get("GEMINI_MODEL") or "gemini-2.0-flash",
            gemini_api_version=merged.get("GEMINI_API_VERSION") or None,
            llm_first_token_timeout=_float(merged, "LLM_FIRST_TOKEN_TIMEOUT", 20.0),
            llm_total_timeout=_float(merged, "LLM_TOTAL_TIMEOUT", 120.0),
            llm_max_retries=_int(merged, "LLM_MAX_RETRIES", 1, minimum=0),
            embedding_model_path=_path(merged, "EMBEDDING_MODEL_PATH"),
            embedding_tokenizer_path=_path(merged, "EMBEDDING_TOKENIZER_PATH"),
            document_max_bytes=_int(merged, "DOCUMENT_MAX_BYTES", 20 * 1024 * 1024, minimum=1024),
            document_quota_bytes=_int(merged, "DOCUMENT_QUOTA_BYTES", 256 * 1024 * 1024, minimum=1024),
            ingest_timeout_seconds=_float(merged, "INGEST_TIMEOUT_SECONDS", 120.0),
            ingest_max_pages=_int(merged, "INGEST_MAX_PAGES", 2000, minimum=1),
            ingest_max_memory_mb=_int(merged, "INGEST_MAX_MEMORY_MB", 2048, minimum=256),
            ingest_concurrency=_int(merged, "INGEST_CONCURRENCY", 2, minimum=1),
            ingest_concurrency_per_user=_int(merged, "INGEST_CONCURRENCY_PER_USER", 1, minimum=1),
            vosk_model_path=_path(merged, "VOSK_MODEL_PATH"),
            whisper_model_path=_path(merged, "WHISPER_MODEL_PATH"),
            max_utterance_seconds=_int(merged, "MAX_UTTERANCE_SECONDS", 60, minimum=1),
            max_audio_chunk_bytes=_int(merged, "MAX_AUDIO_CHUNK_BYTES", 64 * 1024, minimum=320),
            utterance_idle_seconds=_float(merged, "UTTERANCE_IDLE_SECONDS", 10.0),
            stt_queued_seconds_per_user=_int(merged, "STT_QUEUED_SECONDS_PER_USER", 120, minimum=1),
            audio_seconds_per_minute=_int(merged, "AUDIO_SECONDS_PER_MINUTE", 120, minimum=1),
            socket_max_message_bytes=_int(merged, "SOCKET_MAX_MESSAGE_BYTES", 16 * 1024 * 1024, minimum=65536),
            socket_max_queued_bytes=_int(merged, "SOCKET_MAX_QUEUED_BYTES", 8 * 1024 * 1024, minimum=65536),
            auto_answer=_bool(merged, "AUTO_ANSWER", True),
            turn_lease_seconds=_float(merged, "TURN_LEASE_SECONDS", 30.0),
            rest_per_minute=_int(merged, "RATE_LIMIT_REST_PER_MINUTE", 600),
            rest_per_minute_ip=_int(merged, "RATE_LIMIT_REST_PER_MINUTE_IP", 1200),
            connects_per_minute=_int(merged, "RATE_LIMIT_CONNECTS_PER_MINUTE", 60),
            connects_per_minute_ip=_int(merged, "RATE_LIMIT_CONNECTS_PER_MINUTE_IP", 300),
            messages_per_minute=_int(merged, "RATE_LIMIT_MESSAGES_PER_MINUTE", 30),
            messages_per_minute_ip=_int(merged, "RATE_LIMIT_MESSAGES_PER_MINUTE_IP", 120),
            audio_seconds_per_minute_ip=_int(merged, "AUDIO_SECONDS_PER_MINUTE_IP", 600),
            login_failures_per_username=_int(merged, "LOGIN_FAILURES_PER_USERNAME", 10),
            login_failures_per_ip=_int(merged, "LOGIN_FAILURES_PER_IP", 50),
            trust_forwarded_for=_bool(merged, "TRUST_FORWARDED_FOR", False),
            cache_max_entries=_int(merged, "CACHE_MAX_ENTRIES", 10_000, minimum=1),
            metrics_token=merged.get("METRICS_TOKEN") or None,
            metrics_allow_from=_networks(merged, "METRICS_ALLOW_FROM", Settings.metrics_allow_from),
            content_encryption_key=key,
            content_encryption_old_keys=old_keys,
            log_format=_choice(merged, "LOG_FORMAT", "json", ("json", "text")),
        )
