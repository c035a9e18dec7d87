"""Delayed labels: every prediction's id and bounds, the realised scores fed back later, and the quality
they measure, in one store chosen by a URL (`HYBRID_SCORER_DATABASE_URL`): by default a SQLite file
beside the prediction log (durable across restarts, safe for several readers while the service writes);
PostgreSQL when several replicas serve, so every replica's predictions and feedback meet in one place.

A prediction is recorded when its log line is written (serving/predictlog.py's writer thread, in batches).
Feedback (`POST /v1/feedback`, `hybrid-scorer feedback FILE.csv`) may arrive before its prediction is in
the store or name an id this store never saw: it is kept either way and joins when it can. The realised
Spearman, RMSE and interval coverage per cohort (the UTC day or ISO week of the prediction) come with
bootstrap intervals; `hybrid-scorer monitor` prints them and `/metrics` exports the latest cohort's.
The schema is Alembic's (hybrid_scorer/migrations), brought to its head the first time the database
answers, so a store that is down when the service starts does not stop it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite

from hybrid_scorer.errors import ConfigurationError, StoreUnavailableError
from hybrid_scorer.intervals import LEVELS, bound_columns, interval_field
from hybrid_scorer.quality import bootstrap_intervals
from hybrid_scorer.target import log_target

log = logging.getLogger(__name__)
Cohort = Literal["day", "week"]
_MIGRATION_LOCK = 0x6879627269640001  # a PostgreSQL advisory lock: replicas starting together migrate once
# Alembic's `context` and `op` are module globals: two stores migrating at once in one process (the
# service's writer thread and `monitor`, say) would tear each other's down, whatever their databases.
_MIGRATING = threading.Lock()

_metadata = sa.MetaData()
PREDICTIONS = sa.Table(
    "predictions",
    _metadata,
    sa.Column("prediction_id", sa.Text, primary_key=True),
    sa.Column("predicted_at", sa.Text, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("log_prediction", sa.Float, nullable=False),
    *(sa.Column(name, sa.Float) for level in LEVELS for name in bound_columns(level)),
    sa.Column("fallback", sa.Integer, nullable=False),
)
FEEDBACK = sa.Table(
    "feedback",
    _metadata,
    sa.Column("prediction_id", sa.Text, primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("observed_at", sa.Text, nullable=False),
    sa.Column("received_at", sa.Text, nullable=False),
)


def outcomes_path(log_path: Path) -> Path:
    """The default store lives beside the prediction log it belongs to."""
    return log_path.with_name("outcomes.sqlite")


def store_url(database_url: str | None, log_path: Path) -> str:
    """`database_url` when set (shared by replicas), else the SQLite file beside this process's log."""
    return database_url or f"sqlite:///{outcomes_path(log_path)}"


@dataclass(frozen=True)
class Feedback:
    prediction_id: str
    score: float
    observed_at: datetime


def _engine(url: str) -> sa.Engine:
    """The engine for `url`; a URL SQLAlchemy cannot read, or whose driver is not installed, is a
    ConfigurationError naming the setting and the form it takes."""
    try:
        return _make_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ModuleNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"HYBRID_SCORER_DATABASE_URL={_masked(url)!r}: {exc}"
            " (expected postgresql+psycopg://user:password@host/db, or sqlite:///path.db)"
        ) from None


def _masked(url: str) -> str:
    """The URL with its password hidden (one SQLAlchemy cannot parse: its user and password)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        scheme, _, rest = url.rpartition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}" if scheme and "@" in rest else url


def _make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = sa.make_url(url).database
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", lambda db, _: db.execute("PRAGMA journal_mode=WAL"))
        return engine
    # a database that stops answering fails a write within seconds (retried by the caller), never hangs it;
    # positional parameters, as sqlite3's: one row shape (a tuple in column order) serves both drivers
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=4, connect_args={"connect_timeout": 3}, paramstyle="format"
    )


def migrate(connection: sa.Connection) -> None:
    """Bring the schema to the newest migration (a no-op when it is there already)."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("hybrid_scorer") / "migrations"))
    head = ScriptDirectory.from_config(config).get_current_head()
    if MigrationContext.configure(connection).get_current_revision() == head:
        return
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


# a prediction's interval fields, in the order of their bound columns (named once: the writer thread turns
# every served prediction into a row)
_INTERVAL_FIELDS = [interval_field(level) for level in LEVELS]


class OutcomeStore:
    """Predictions, feedback and their join, on any database SQLAlchemy reaches (SQLite, PostgreSQL).
    A database that cannot be reached raises StoreUnavailableError and counts in `failures`."""

    def __init__(self, url: str) -> None:
        self.engine = _engine(url)
        self.where = self.engine.url.render_as_string(hide_password=True)
        self.failures: dict[str, int] = {"predictions": 0, "feedback": 0}  # writes that did not reach it
        self._migrated = False
        self._upserts = {table.name: self._upsert_statement(table) for table in (PREDICTIONS, FEEDBACK)}
        self._driver_errors = (sa.exc.DBAPIError, self.engine.dialect.loaded_dbapi.Error)
        self._writers = threading.local()  # each writing thread keeps one connection checked out of the pool
        query = (
            sa.select(PREDICTIONS, FEEDBACK.c.score, FEEDBACK.c.observed_at)
            .join(FEEDBACK, PREDICTIONS.c.prediction_id == FEEDBACK.c.prediction_id)
            .order_by(PREDICTIONS.c.predicted_at)
        )
        self._joined = str(query.compile(dialect=self.engine.dialect))

    @contextmanager
    def _connection(self, kind: str | None = None) -> Iterator[sa.Connection]:
        """A connection to a schema at its head; `kind`: a write, counted in `failures` when it fails."""
        try:
            with self.engine.connect() as connection:
                if not self._migrated:
                    with _MIGRATING:
                        if not self._migrated:
                            with connection.begin():
                                migrate(connection)
                            self._migrated = True
                yield connection
        except sa.exc.DBAPIError as exc:
            if kind is not None:
                self.failures[kind] += 1
            raise StoreUnavailableError(f"the outcome store {self.where} failed: {exc.orig}") from exc

    def _ensure_migrated(self, kind: str | None = None) -> None:
        """The schema at its head before the driver's own connection is used (`_connection` migrates)."""
        if not self._migrated:
            with self._connection(kind):
                pass

    def _upsert_statement(self, table: sa.Table) -> str:
        """Insert, a later row for the same id replacing the earlier one, compiled once to the dialect's
        SQL: building and binding the statement per batch cost more than SQLite takes to run it. Its
        parameters are the table's columns in order, so a row is a plain tuple."""
        insert = (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(table)
        key = table.primary_key.columns[0].name
        upsert = insert.on_conflict_do_update(
            index_elements=[key], set_={c.name: insert.excluded[c.name] for c in table.columns if c.name != key}
        )
        compiled = upsert.compile(dialect=self.engine.dialect)
        if list(compiled.positiontup or ()) != [c.name for c in table.columns]:
            raise AssertionError(f"{table.name}: the upsert's parameters are not its columns in order")
        return str(compiled)

    def _upsert(self, table: sa.Table, rows: list[tuple[Any, ...]], kind: str) -> None:
        """On the driver's own connection, kept by the writing thread: the writes are the hot path of a
        busy service, and a pool checkout, or SQLAlchemy's connection and transaction wrapping, cost as
        much as SQLite's insert of a row. A connection that fails is invalidated; the next write opens
        another (a database back from an outage is found again)."""
        if not rows:
            return
        self._ensure_migrated(kind)
        kept = getattr(self._writers, "connection", None)
        try:
            if kept is None:
                kept = self._writers.connection = self.engine.raw_connection()
            driver = kept.driver_connection
            assert driver is not None  # a connection checked out of the pool has one
            driver.cursor().executemany(self._upserts[table.name], rows)
            driver.commit()
        except self._driver_errors as exc:
            self._writers.connection = None
            if kept is not None:
                kept.invalidate(exc)
            self.failures[kind] += 1
            raise StoreUnavailableError(f"the outcome store {self.where} failed: {exc}") from exc

    def upgrade(self) -> str | None:
        """Apply the migrations now (otherwise done on first use); the schema's revision."""
        with self._connection() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def add_predictions(self, records: Iterable[dict[str, Any]]) -> None:
        """Records shaped like the prediction log's lines (prediction_id, timestamp, intervals, ...)."""
        rows = [
            (r["prediction_id"], r["timestamp"], r["model_version"], r["log_score"],
             *[bound for field in _INTERVAL_FIELDS for bound in r.get(field) or (None, None)], int(r["fallback"]))
            for r in records
        ]  # fmt: skip
        self._upsert(PREDICTIONS, rows, "predictions")

    def add_feedback(self, items: Iterable[Feedback]) -> int:
        """Store realised scores (a later one for the same prediction replaces the earlier); returns how
        many were stored."""
        now = datetime.now(UTC).isoformat()
        rows = [(f.prediction_id, float(f.score), f.observed_at.isoformat(), now) for f in items]
        self._upsert(FEEDBACK, rows, "feedback")
        return len(rows)

    def joined(self) -> pd.DataFrame:
        """Predictions with their realised score (only those that have one). Read on the driver's own
        connection with the query compiled once, as the writes are: every scrape of /metrics runs it."""
        self._ensure_migrated()
        try:
            connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute(self._joined)
                columns = [c[0] for c in cursor.description]
                return pd.DataFrame.from_records(cursor.fetchall(), columns=columns, coerce_float=True)
            finally:
                connection.close()
        except self._driver_errors as exc:
            raise StoreUnavailableError(f"the outcome store {self.where} failed: {exc}") from exc

    def counts(self) -> dict[str, int]:
        known = sa.select(PREDICTIONS.c.prediction_id)
        unmatched = sa.select(sa.func.count()).where(FEEDBACK.c.prediction_id.not_in(known))
        with self._connection() as connection:
            return {
                "predictions": connection.scalar(sa.select(sa.func.count()).select_from(PREDICTIONS)) or 0,
                "feedback": connection.scalar(sa.select(sa.func.count()).select_from(FEEDBACK)) or 0,
                "feedback_without_prediction": connection.scalar(unmatched) or 0,
            }


@dataclass
class CohortQuality:
    cohort: str
    labels: int
    spearman: tuple[float, float, float]  # point, 2.5%, 97.5% (bootstrap over the cohort's posts)
    rmse: tuple[float, float, float]
    coverage: dict[float, float]  # per interval level: the share of realised scores inside it


def _coverage(score: np.ndarray, rows: pd.DataFrame, level: float) -> float:
    low, high = bound_columns(level)
    return float(np.mean((score >= rows[low]) & (score <= rows[high])))


def cohort_of(timestamps: pd.Series, cohort: Cohort) -> pd.Series:
    times = pd.to_datetime(timestamps, utc=True, format="ISO8601")
    if cohort == "day":
        return times.dt.strftime("%Y-%m-%d")
    iso = times.dt.isocalendar()
    return iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)


def realised_quality(joined: pd.DataFrame, cohort: Cohort = "week", n_boot: int = 1000) -> list[CohortQuality]:
    """Per cohort of prediction time: Spearman and RMSE of the predictions against log1p(realised score),
    with 95% bootstrap intervals, and the share of realised scores inside each level's interval."""
    if joined.empty:
        return []
    out = []
    for name, rows in joined.groupby(cohort_of(joined["predicted_at"], cohort), sort=True):
        y = log_target(rows["score"])
        point = rows["log_prediction"].to_numpy(np.float64)
        intervals = bootstrap_intervals(y, point, n_boot=n_boot, seed=0)[0] if len(rows) > 2 else None
        score = rows["score"].to_numpy(np.float64)
        out.append(
            CohortQuality(
                cohort=str(name),
                labels=len(rows),
                spearman=intervals["spearman"] if intervals else (np.nan, np.nan, np.nan),
                rmse=intervals["rmse"] if intervals else (np.nan, np.nan, np.nan),
                coverage={level: _coverage(score, rows, level) for level in LEVELS},
            )
        )
    return out
