"""Run history: SQLAlchemy models, the store, Celery signal recording, Alembic migrations."""
