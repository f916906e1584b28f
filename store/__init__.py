"""Persistence: SQLAlchemy models, the engine, and repositories. Never imports pipelines."""
