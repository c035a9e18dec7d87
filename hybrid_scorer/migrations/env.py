"""Alembic's entry point: migrate over the connection outcomes.migrate() hands in (inside its transaction,
under its lock), never a URL from a config file."""

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
