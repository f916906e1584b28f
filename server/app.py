"""The application factory: every shared resource is built here and closed on shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import aiohttp_cors
from aiohttp import web
from redis.asyncio import Redis

from core import ratelimit
from core.auth import Auth
from core.cipher import ContentCipher
from core.metrics import Metrics
from core.ratelimit import Limits, RateLimiter
from core.settings import Settings, load_jwt_secret, with_jwt_secret
from pipelines.llm.chain import ChainPolicy
from pipelines.llm.factory import LLMConfig, create_answer_model
from pipelines.media.ocr import Ocr
from pipelines.media.prepare import AttachmentLimits
from pipelines.media.service import Attachments
from pipelines.rag.embedder import Embedder
from pipelines.rag.extract import ExtractLimits
from pipelines.rag.ingest import Ingestor
from pipelines.rag.retrieval import Retriever
from pipelines.rag.vectors import VectorStore, create_vector_store
from pipelines.rag.vectors.legacy import find_legacy
from pipelines.rag.vectors.legacy import warning as legacy_warning
from pipelines.speech.service import Speech, SpeechLimits
from server import __version__, keys
from server.asyncapi import build_asyncapi
from server.endpoints import add_endpoints
from server.errors import error_middleware
from server.middlewares import context_middleware, rate_limit_middleware
from server.openapi import build_openapi
from server.preload import Preloads
from server.rag_cache import RagContextCache
from server.realtime import create_sio, realtime_ctx
from server.routes import all_endpoints
from server.routes.web import add_web_routes
from store import cache
from store.cache import Cache
from store.db import create_engine, create_sessionmaker, create_units

log = logging.getLogger(__name__)


async def executor_ctx(app: web.Application) -> AsyncIterator[None]:
    """A small pool for CPU-bound work (password hashing) so it never runs on the event loop."""
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="parley-cpu")
    app[keys.CPU_EXECUTOR] = executor
    settings = app[keys.SETTINGS]
    app[keys.AUTH] = Auth(load_jwt_secret(settings), settings.jwt_ttl_seconds, executor)
    yield
    await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


async def db_ctx(app: web.Application) -> AsyncIterator[None]:
    """The engine and a session factory whose commits invalidate the cache."""
    settings = app[keys.SETTINGS]
    # building an SQLite engine touches the filesystem: keep it off the loop
    cipher = None
    if settings.content_encryption_key is not None:
        cipher = ContentCipher(settings.content_encryption_key, settings.content_encryption_old_keys)
    engine = await asyncio.to_thread(
        create_engine, settings.database_url, pool_size=settings.db_pool_size, echo=settings.db_echo, cipher=cipher
    )
    app[keys.ENGINE] = engine
    app[keys.SESSIONMAKER] = create_sessionmaker(engine, app[keys.CACHE])
    app[keys.UNITS] = await asyncio.to_thread(
        create_units, settings.database_url, app[keys.SESSIONMAKER], cache=app[keys.CACHE], cipher=cipher
    )
    yield
    await app[keys.UNITS].close()
    await engine.dispose()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """A Redis client when REDIS_URL is set, and the cache and rate limits: in Redis, or in this process."""
    settings, metrics = app[keys.SETTINGS], app[keys.METRICS]
    app[keys.LIMITS] = Limits.from_settings(settings)
    if settings.redis_url is None:
        app[keys.CACHE] = Cache(cache.MemoryBackend(settings.cache_max_entries), metrics.cache)
        app[keys.LIMITER] = RateLimiter(ratelimit.MemoryBackend(), metrics.rate_limited)
        yield
        return
    client: Redis = Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )
    app[keys.REDIS] = client
    app[keys.CACHE] = Cache(cache.RedisBackend(client), metrics.cache)
    app[keys.LIMITER] = RateLimiter(ratelimit.RedisBackend(client), metrics.rate_limited)
    yield
    await client.aclose()


async def models_ctx(app: web.Application) -> AsyncIterator[None]:
    """The answer model (LLM providers in fallback order); a bad LLM_PROVIDERS stops start-up loudly."""
    settings = app[keys.SETTINGS]
    # client construction loads TLS certificates and model files: off the loop
    model = await asyncio.to_thread(
        create_answer_model,
        LLMConfig(
            providers=settings.llm_providers,
            max_tokens=settings.llm_max_tokens,
            history_tokens=settings.llm_history_tokens,
            groq_api_key=settings.groq_api_key,
            groq_base_url=settings.groq_base_url,
            groq_model=settings.groq_model,
            groq_vision_model=settings.groq_vision_model,
            offline_model_path=settings.local_llm_model_path,
            offline_max_tokens=settings.local_llm_max_tokens,
            offline_max_sentences=settings.local_llm_max_sentences or None,
            offline_threads=settings.local_llm_threads or None,
            gemini_api_key=settings.gemini_api_key,
            gemini_base_url=settings.gemini_base_url,
            gemini_model=settings.gemini_model,
            gemini_api_version=settings.gemini_api_version,
            policy=ChainPolicy(
                first_token_timeout=settings.llm_first_token_timeout,
                total_timeout=settings.llm_total_timeout,
                retries=settings.llm_max_retries,
            ),
        ),
    )
    app[keys.ANSWER_MODEL] = model
    yield
    await model.close()


VECTORS_FOLDER = "vectors"


async def create_retriever(settings: Settings, cache: Cache | None = None) -> Retriever:
    """Embedder (loaded on first use) and vector store (a Qdrant Edge shard under the data dir, or
    QDRANT_URL) for these settings; with `cache`, search results are kept as `rag_context:{hash}` entries.
    Vectors left in the former layout are reported with the command that rebuilds them."""
    embedder = Embedder(
        settings.embedding_model_path,
        settings.embedding_tokenizer_path,
        int8_cache=settings.model_cache_dir if settings.embedding_int8 else None,
    )

    def open_store() -> tuple[VectorStore, list[str]]:
        store = create_vector_store(
            embedder.dimensions,
            path=settings.data_dir / VECTORS_FOLDER,
            url=settings.qdrant_url,
            api_key=settings.qdrant_api_key,
        )
        return store, find_legacy(settings.data_dir, store)

    store, legacy = await asyncio.to_thread(open_store)
    if legacy:
        log.warning(legacy_warning(legacy))
    return Retriever(embedder, store, cache=RagContextCache(cache) if cache is not None else None)


async def rag_ctx(app: web.Application) -> AsyncIterator[None]:
    """The retriever and the ingestor of uploaded documents; documents a previous run left unfinished
    are queued again."""
    settings = app[keys.SETTINGS]
    retriever = await create_retriever(settings, app[keys.CACHE])
    ingestor = Ingestor(
        retriever,
        app[keys.SESSIONMAKER],
        settings.data_dir / "documents",
        limits=ExtractLimits(
            seconds=settings.ingest_timeout_seconds,
            max_pages=settings.ingest_max_pages,
            memory_mb=settings.ingest_max_memory_mb,
        ),
        per_node=settings.ingest_concurrency,
        per_user=settings.ingest_concurrency_per_user,
    )
    app[keys.RETRIEVER], app[keys.INGESTOR] = retriever, ingestor
    ingestor.resume_soon()
    yield
    await ingestor.close()
    await retriever.close()


async def attachments_ctx(app: web.Application) -> AsyncIterator[None]:
    """Message attachments: checked and re-encoded, OCR and thumbnails in a pool of their own."""
    settings = app[keys.SETTINGS]
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="media")
    limits = AttachmentLimits(
        max_bytes=settings.attachment_max_bytes,
        max_pixels=settings.attachment_max_pixels,
        thumbnail_edge=settings.attachment_thumbnail_edge,
    )
    service = Attachments(
        settings.data_dir / "attachments",
        ingestor=app[keys.INGESTOR],
        sessionmaker=app[keys.SESSIONMAKER],
        executor=executor,
        limits=limits,
        ocr=Ocr(executor, languages=settings.ocr_languages, timeout=settings.ocr_timeout_seconds),
        prompt_images=settings.attachment_prompt_images,
        index_wait=settings.attachment_index_wait_seconds,
    )
    app[keys.ATTACHMENTS] = service
    yield
    await service.close()
    await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)


async def speech_ctx(app: web.Application) -> AsyncIterator[None]:
    """Speech engines (loaded on first use, off the loop) and the stored-audio folders."""
    settings = app[keys.SETTINGS]
    limits = SpeechLimits(
        max_utterance_seconds=settings.max_utterance_seconds,
        max_chunk_bytes=settings.max_audio_chunk_bytes,
        utterance_idle_seconds=settings.utterance_idle_seconds,
        stt_queued_seconds_per_user=settings.stt_queued_seconds_per_user,
    )
    metrics = app[keys.METRICS]
    timers = {"stt": metrics.stt_time, "tts": metrics.tts_time}
    speech = Speech(
        settings.data_dir,
        vosk_model=settings.vosk_model_path,
        whisper_model=settings.whisper_model_path,
        limits=limits,
        observe=lambda kind, seconds: timers[kind].observe(seconds),
    )
    app[keys.SPEECH] = speech
    yield
    await speech.close()


async def preload_ctx(app: web.Application) -> AsyncIterator[None]:
    """With PRELOAD_MODELS, load the local models (the embedding model, the offline LLM, speech-to-text) off the
    loop once the node is up, so that its first question or utterance does not wait for them; `/readyz` says
    `unavailable` meanwhile."""
    preloads = app[keys.PRELOADS] = Preloads()
    if app[keys.SETTINGS].preload_models:
        preloads.start("embedding model", app[keys.RETRIEVER].embedder.load())
        preloads.start("answer model", app[keys.ANSWER_MODEL].load())
        preloads.start("speech-to-text model", app[keys.SPEECH].load())
    yield
    await preloads.close()


def _setup_cors(app: web.Application, origins: tuple[str, ...]) -> None:
    if not origins:
        return
    options = aiohttp_cors.ResourceOptions(allow_credentials=True, expose_headers="*", allow_headers="*")
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in origins})
    for route in list(app.router.routes()):
        cors.add(route)


def create_app(settings: Settings) -> web.Application:
    """A fully wired Parley application for `settings` (a JWT secret is kept in the data dir if none is set)."""
    settings = with_jwt_secret(settings)  # before the loop serves: it may read or write a file
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[context_middleware, error_middleware, rate_limit_middleware],
    )
    app[keys.SETTINGS] = settings
    endpoints = all_endpoints()
    app[keys.OPENAPI] = build_openapi(endpoints, __version__)
    app[keys.ASYNCAPI] = build_asyncapi(__version__)
    add_endpoints(app, endpoints)
    add_web_routes(app)  # the web client at /
    app[keys.SIO] = create_sio(app)
    app[keys.METRICS] = Metrics()
    app.cleanup_ctx.extend(
        [executor_ctx, redis_ctx, db_ctx, models_ctx, rag_ctx, attachments_ctx, speech_ctx, realtime_ctx, preload_ctx]
    )
    _setup_cors(app, settings.cors_origins)
    return app
