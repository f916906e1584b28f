"""Settings come from the environment, with embedded defaults and loud failures; the docs follow the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import DOC, Settings, SettingsError, declarations, documented, load_jwt_secret, settings_table


def test_embedded_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env(env={"PARLEY_DATA_DIR": str(tmp_path)}, dotenv=None)
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'parley.db'}"
    assert settings.redis_url is None and settings.qdrant_url is None
    assert settings.llm_providers == ("offline",)
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.jwt_secret is None and not (tmp_path / "jwt_secret").exists()  # parsing writes nothing
    # start-up generates a secret once and keeps it, so tokens survive a restart
    secret = load_jwt_secret(settings)
    assert (tmp_path / "jwt_secret").read_text() == secret and len(secret) >= 32
    assert load_jwt_secret(Settings.from_env(env={"PARLEY_DATA_DIR": str(tmp_path)}, dotenv=None)) == secret


def test_environment_and_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=9000\nLLM_PROVIDERS=groq, gemini ,offline\nMAX_BODY_BYTES=4096\nLOG_FORMAT=TEXT\n")
    env = {
        "PARLEY_DATA_DIR": str(tmp_path),
        "PORT": "9100",
        "JWT_SECRET": "s" * 32,
        "DATABASE_URL": "postgres://u:p@db:5432/parley",
        "DB_ECHO": "yes",
        "LLM_TOTAL_TIMEOUT": "2.5",
        "LOG_LEVEL": "debug",
        "METRICS_ALLOW_FROM": "10.1.0.0/16, ::1",
        "WHISPER_MODEL_PATH": "~/whisper",
        "GROQ_API_KEY": "",  # empty is unset
    }
    settings = Settings.from_env(env=env, dotenv=dotenv)
    assert settings.port == 9100  # the environment wins over .env
    assert settings.llm_providers == ("groq", "gemini", "offline")
    assert settings.max_body_bytes == 4096 and settings.log_format == "text"
    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/parley"
    assert settings.db_echo is True and settings.llm_total_timeout == 2.5 and settings.log_level == "DEBUG"
    assert settings.metrics_allow_from == ("10.1.0.0/16", "::1")
    assert settings.whisper_model_path == Path.home() / "whisper"
    assert settings.groq_api_key is None and settings.jwt_secret == "s" * 32
    assert "s" * 32 not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("JWT_SECRET", "short"),
        ("DATABASE_URL", "mysql://x"),
        ("DB_ECHO", "perhaps"),
        ("JWT_TTL_SECONDS", "5"),
        ("LLM_FIRST_TOKEN_TIMEOUT", "0"),
        ("LOG_FORMAT", "xml"),
        ("METRICS_ALLOW_FROM", "10.0.0.0/8,intranet"),
        ("RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE", "0"),
        ("ATTACHMENT_MAX_BYTES", "100"),
        ("ATTACHMENT_MAX_BYTES", str(64 * 1024 * 1024)),  # more than a socket message may hold
        ("ATTACHMENT_THUMBNAIL_EDGE", "4"),
        ("OCR_TIMEOUT_SECONDS", "0"),
        ("LOCAL_LLM_MAX_TOKENS", "0"),
        ("LLM_HISTORY_TOKENS", "-1"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env={"PARLEY_DATA_DIR": str(tmp_path), name: value}, dotenv=None)


def test_renamed_variables_are_still_read_with_a_warning(tmp_path: Path) -> None:
    old = {"PARLEY_DATA_DIR": str(tmp_path), "AUDIO_SECONDS_PER_MINUTE": "30", "LOGIN_FAILURES_PER_IP": "7"}
    with pytest.warns(DeprecationWarning) as caught:
        settings = Settings.from_env(env=old, dotenv=None)
    assert (settings.audio_seconds_per_minute, settings.login_failures_per_ip) == (30, 7)
    assert sorted(str(w.message) for w in caught) == [
        "AUDIO_SECONDS_PER_MINUTE is deprecated: set RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE instead",
        "LOGIN_FAILURES_PER_IP is deprecated: set RATE_LIMIT_LOGIN_FAILURES_PER_IP instead",
    ]
    # the new name wins, and then the old one is not even looked at
    both = {**old, "RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE": "45", "RATE_LIMIT_LOGIN_FAILURES_PER_IP": "8"}
    assert Settings.from_env(env=both, dotenv=None).audio_seconds_per_minute == 45


def test_every_setting_is_declared_once_and_documented() -> None:
    specs = [spec for _, spec, _ in declarations().values()]
    names = [spec.name for spec in specs] + [old for spec in specs for old in spec.old_names]
    assert len(names) == len(set(names))
    assert all(spec.doc for spec in specs)
    table = settings_table()
    assert all(f"| `{spec.name}` |" in table for spec in specs)


def test_the_configuration_doc_carries_the_generated_table() -> None:
    text = DOC.read_text()
    assert documented(text) == text, "docs/configuration.md is stale: run `python -m core.settings`"


def test_attachment_settings(tmp_path: Path) -> None:
    env = {
        "PARLEY_DATA_DIR": str(tmp_path),
        "ATTACHMENT_MAX_BYTES": "2048",
        "ATTACHMENT_MAX_PIXELS": "1000000",
        "ATTACHMENT_PROMPT_IMAGES": "0",
        "OCR_LANGUAGES": "eng+deu",
        "GROQ_VISION_MODEL": "llama-vision",
    }
    settings = Settings.from_env(env=env, dotenv=None)
    assert (settings.attachment_max_bytes, settings.attachment_max_pixels) == (2048, 1_000_000)
    assert (settings.attachment_prompt_images, settings.ocr_languages) == (0, "eng+deu")
    assert settings.groq_vision_model == "llama-vision"
    defaults = Settings.from_env(env={"PARLEY_DATA_DIR": str(tmp_path)}, dotenv=None)
    assert (defaults.attachment_max_bytes, defaults.groq_vision_model) == (10 * 1024 * 1024, None)


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


def test_without_a_data_dir_the_defaults_live_in_data_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `make run` on a bare laptop gets: nothing set, everything under ./data."""
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env(env={}, dotenv=None)
    assert settings.data_dir == (tmp_path / "data").resolve()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'data' / 'parley.db'}"
