"""Every typed application key in one place."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import socketio
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.auth import Auth
from core.metrics import Metrics
from core.ratelimit import Limits, RateLimiter
from core.settings import Settings
from handlers.tokens import Revocations
from pipelines.chat.model import AnswerModel
from pipelines.media.service import Attachments
from pipelines.rag.ingest import Ingestor
from pipelines.rag.retrieval import Retriever
from pipelines.speech.service import Speech
from server.preload import Preloads
from store.cache import Cache
from store.db import Units
from turns.access import Access
from turns.answers import Answers
from turns.broadcast import Broadcaster
from turns.control import TurnGate
from turns.intake import Intake

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
#: where the hot paths' synchronous units of work run (store.db.Units)
UNITS = web.AppKey("units", Units)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
REDIS = web.AppKey("redis", Redis)
AUTH = web.AppKey("auth", Auth)
CPU_EXECUTOR = web.AppKey("cpu_executor", Executor)
OPENAPI = web.AppKey("openapi", dict[str, Any])
ASYNCAPI = web.AppKey("asyncapi", dict[str, Any])
SIO = web.AppKey("sio", socketio.AsyncServer)
ANSWERS = web.AppKey("answers", Answers)
BROADCASTER = web.AppKey("broadcaster", Broadcaster)
INTAKE = web.AppKey("intake", Intake)
ANSWER_MODEL = web.AppKey("answer_model", AnswerModel)
RETRIEVER = web.AppKey("retriever", Retriever)
INGESTOR = web.AppKey("ingestor", Ingestor)
ATTACHMENTS = web.AppKey("attachments", Attachments)
TURN_GATE = web.AppKey("turn_gate", TurnGate)
SPEECH = web.AppKey("speech", Speech)
METRICS = web.AppKey("metrics", Metrics)
CACHE = web.AppKey("cache", Cache)
LIMITER = web.AppKey("limiter", RateLimiter)
LIMITS = web.AppKey("limits", Limits)
REVOCATIONS = web.AppKey("revocations", Revocations)
ACCESS = web.AppKey("access", Access)
#: the models a starting node loads in the background (PRELOAD_MODELS), for /readyz
PRELOADS = web.AppKey("preloads", Preloads)
