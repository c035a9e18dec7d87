"""Alembic migrations of the outcome store (hybrid_scorer/outcomes.py applies them on first use)."""
