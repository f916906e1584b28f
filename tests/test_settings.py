"""Settings come from the environment, with embedded defaults and loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import Settings, SettingsError


def test_embedded_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env(env={"PARLEY_DATA_DIR": str(tmp_path)}, dotenv=None)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    assert settings.redis_url is None and settings.qdrant_url is None
    assert settings.llm_providers == ("offline",)
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    # the generated secret is kept, so tokens survive a restart
    assert (tmp_path / "jwt_secret").read_text() == settings.jwt_secret
    assert Settings.from_env(env={"PARLEY_DATA_DIR": str(tmp_path)}, dotenv=None).jwt_secret == settings.jwt_secret


def test_environment_and_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=9000\nLLM_PROVIDERS=groq, gemini ,offline\nMAX_BODY_BYTES=4096\n")
    env = {
        "PARLEY_DATA_DIR": str(tmp_path),
        "PORT": "9100",
        "JWT_SECRET": "s" * 32,
        "DATABASE_URL": "postgres://u:p@db:5432/parley",
    }
    settings = Settings.from_env(env=env, dotenv=dotenv)
    assert settings.port == 9100  # the environment wins over .env
    assert settings.llm_providers == ("groq", "gemini", "offline")
    assert settings.max_body_bytes == 4096
    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/parley"
    assert "s" * 32 not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("JWT_SECRET", "short"),
        ("DATABASE_URL", "mysql://x"),
        ("DB_ECHO", "perhaps"),
        ("JWT_TTL_SECONDS", "5"),
        ("LOCAL_LLM_MAX_TOKENS", "0"),
        ("LLM_HISTORY_TOKENS", "-1"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env={"PARLEY_DATA_DIR": str(tmp_path), name: value}, dotenv=None)


def test_answer_budgets(tmp_path: Path) -> None:
    defaults = Settings.from_env(env={"PARLEY_DATA_DIR": str(tmp_path)}, dotenv=None)
    assert (defaults.llm_history_tokens, defaults.local_llm_max_tokens, defaults.local_llm_max_sentences) == (
        1500,
        160,
        3,
    )
    assert defaults.local_llm_threads == 0  # half the cores
    env = {
        "PARLEY_DATA_DIR": str(tmp_path),
        "LLM_HISTORY_TOKENS": "400",
        "LOCAL_LLM_MAX_TOKENS": "64",
        "LOCAL_LLM_MAX_SENTENCES": "0",
        "LOCAL_LLM_THREADS": "2",
    }
    chosen = Settings.from_env(env=env, dotenv=None)
    assert (chosen.llm_history_tokens, chosen.local_llm_max_tokens, chosen.local_llm_max_sentences) == (400, 64, 0)
    assert chosen.local_llm_threads == 2
