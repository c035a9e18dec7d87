"""One settings object: environment variables prefixed HYBRID_SCORER_, overridden by CLI flags."""

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from hybrid_scorer.errors import ConfigurationError

# the defaults that code outside the settings also needs (an estimator's seed, a function's keyword),
# named once here so every one of them is the setting's default
DEFAULT_SEED = 42
DEFAULT_PROMPT = "assessment_v4"
DEFAULT_CONCURRENCY = 4  # calls at once to a remote LLM (an in-process model serves one at a time)
PREDICTION_LOG = "predictions.jsonl"  # the prediction log's name in the log directory
Pooling = Literal["title", "post", "sentences"]  # what the embedded model's embedding reads (Settings.llm_pooling)


class MonitorThresholds(BaseModel):
    """When `hybrid-scorer monitor` alerts (HYBRID_SCORER_MONITOR as JSON, or --threshold NAME=VALUE)."""

    psi: float = 0.2  # > 0.2 is the usual "significant shift" rule of thumb
    js_distance: float = 0.1  # noisy below ~500 predictions with many categories: read it with chi2_p
    p99_latency_ms: float = 50.0
    fallback_rate: float = 0.05
    llm_failure_rate: float = 0.02
    out_of_range_rate: float = 0.01
    min_cache_hit_rate: float = 0.0
    llm_usd_per_hour: float = 1.0  # LLM spend over the last hour
    # share of predictions the steering limit binds: an attack campaign, or drift (about three times the 4.3%
    # of honest held-out posts it binds, reports/ab_defence.md)
    steered_rate: float = 0.15
    min_realised_labels: int = 100  # realised quality is judged on cohorts with at least this many labels
    realised_cohort: Literal["day", "week"] = "week"


class Settings(BaseSettings):
    """Where things live and how the pipeline runs. CLI flags override these values."""

    # "null" in a variable means None where a setting allows it (HYBRID_SCORER_STEERING_LIMIT_LOG=null: no check)
    model_config = SettingsConfigDict(env_prefix="HYBRID_SCORER_", extra="ignore", env_parse_none_str="null")

    data_path: Path = Field(
        Path("data/askscience_data.csv"),
        validation_alias=AliasChoices("data_path", "ASKSCIENCE_CSV", "HYBRID_SCORER_DATA_PATH"),
    )
    cache_dir: Path = Path("cache")
    features: Path | None = None  # a Parquet feature store (e.g. written by `extract --engine ray`) instead
    model_dir: Path = Path("models/current")
    report_dir: Path = Path("reports")
    log_dir: Path = Path("logs")
    llm: str = "embedded"
    prompt: str = DEFAULT_PROMPT
    seed: int = Field(DEFAULT_SEED, ge=0)
    n_folds: int = Field(5, ge=2)
    # keep the served models' cross-fits under cache_dir/fits and read one back for the same posts,
    # parameters and code (fits.py): `make run` then fits each served model once, not three times
    reuse_fits: bool = True
    embedding_components: int = Field(32, ge=1)
    embedding_model: str | None = None  # for ollama/openai when the chat model cannot embed
    embedder: str | None = None  # an LLM spec for the embeddings alone (default: the chat backend embeds)
    openai_response_format: Literal["json_schema", "json_object"] = "json_schema"
    llm_threads: int | None = Field(None, ge=1)  # llama.cpp threads for the embedded model (default: every core)
    # the assessment-pass tokens the embedded model's embedding averages: the title's (the defence against
    # text written at the LLM, llm/backends/embedded.py), the whole post's (the design before it), or the
    # median of the title's and each body sentence's means (no one sentence steers it); hosted embedders are
    # sent the title whatever this says
    llm_pooling: Pooling = "title"
    llm_timeout_s: float = Field(60.0, gt=0)
    llm_concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1)  # while serving
    llm_max_retries: int = Field(4, ge=0)
    predict_llm_budget_ms: float = Field(2000.0, gt=0)
    # the most one part of a post (a sentence) may add to its prediction, in log1p units (log 2: x2): a post
    # whose prediction one part raises further is flagged as steered and scored as the post without it plus
    # this limit (steering.py); None: no check. A promise set before any attack was measured; it binds on
    # 4.3% of honest held-out posts at no measurable Spearman cost (reports/ab_defence.md)
    steering_limit_log: float | None = Field(math.log(2), ge=0)
    # the check also removes each run of two or more parts at the start or end of the body: a block added
    # there in several sentences is then bounded as one sentence is. It costs -0.001 [-0.002, -0.000] Spearman
    # against the limit alone and binds on 4.7% of honest held-out posts instead of 4.2% (scripts/llm_ab.py
    # --experiment blocks, reports/ab_blocks.md: served by the rule written before that run), and scores a
    # body of n parts 3n - 4 times instead of n
    steering_runs: bool = True
    llm_max_usd_per_hour: float | None = Field(None, ge=0)  # serving: past it, new posts are scored without the LLM
    llm_max_usd_per_day: float | None = Field(None, ge=0)
    prediction_log_max_bytes: int = Field(5_000_000, ge=1)
    # the outcome store (predictions, feedback, realised quality): a SQLAlchemy URL such as
    # postgresql+psycopg://user:password@host/db, shared by every replica; None: SQLite beside the log
    database_url: str | None = None
    # predictions waiting for an unreachable store, per replica; past it the oldest are dropped (counted;
    # their lines stay in the JSONL log)
    database_backlog_max: int = Field(100_000, ge=1)
    # answer a prediction only once its record is in the outcome store (or in the backlog while the store is
    # away): a replica that crashes (SIGKILL, out of memory) has then lost no answered prediction, and a
    # label sent to another replica still joins it; it costs about one store commit of latency (group
    # commit, serving/predictlog.py; a store that hangs delays an answer 2 s at most, then the record follows
    # it). None: on when database_url is set, that is when replicas share a store
    answer_after_record: bool | None = None
    serve_max_batch: int = Field(64, ge=1)  # posts per /v1/predict/batch request
    serve_max_body_bytes: int = Field(2_000_000, ge=1)
    # requests handled at once: 2 may wait on the LLM, 2 score; more only fight for the GIL
    serve_threads: int = Field(4, ge=1)
    serve_shutdown_grace_s: float = Field(30.0, ge=0)  # in-flight requests get this long to finish on SIGTERM
    serve_max_in_flight: int = Field(256, ge=1)  # past it, /v1/ requests are refused at once (503 + Retry-After)
    api_keys: str | None = None  # salted key hashes, or a file of them (serving/access.py); None: open
    metrics_require_key: bool = False  # /metrics behind the API keys too
    rate_limit_per_s: float | None = Field(None, gt=0)  # per API key (or client address without keys); None: no limit
    rate_limit_burst: int = Field(100, ge=1)
    monitor: MonitorThresholds = MonitorThresholds()
    # USD per 1M tokens (prompt, completion) for cost estimates; local backends cost 0.
    prices_per_million: dict[str, tuple[float, float]] = {
        "openai:gpt-4o-mini": (0.15, 0.60),
        "openai:gpt-4o": (2.50, 10.00),
        "openai:text-embedding-3-small": (0.02, 0.0),
    }

    @property
    def log_path(self) -> Path:
        """The prediction log, in the log directory."""
        return self.log_dir / PREDICTION_LOG

    @property
    def fits_dir(self) -> Path | None:
        """Where cross-fits are kept (fits.py), or None when `reuse_fits` is off."""
        return self.cache_dir / "fits" if self.reuse_fits else None

    @property
    def answers_after_record(self) -> bool:
        """`answer_after_record`, its default resolved: on exactly when replicas share a database."""
        return self.database_url is not None if self.answer_after_record is None else self.answer_after_record


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment with explicit overrides (None values are ignored). A value that
    cannot work is a ConfigurationError naming where it came from (the flag or the variable) and why."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings.model_validate(given)
    except (ValidationError, SettingsError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": str(exc)}]
        raise ConfigurationError("; ".join(_problem(e, given) for e in errors)) from None


def _problem(error: Any, given: dict[str, object]) -> str:
    """One invalid setting in words; a variable holding a dict or list that is not JSON has no location
    (pydantic-settings names its field in the message)."""
    if error["loc"]:
        return f"{_source(str(error['loc'][0]), given)}={error['input']!r}: {error['msg']}"
    field = next((f for f in Settings.model_fields if f'field "{f}"' in error["msg"]), None)
    return f"{_source(field, given)}: not valid JSON" if field else str(error["msg"])


def _source(field: str, given: dict[str, object]) -> str:
    """Where a setting's value came from, as the user would write it: a flag or an environment variable."""
    if field in given:
        return "--" + field.replace("_", "-")
    return "ASKSCIENCE_CSV (or HYBRID_SCORER_DATA_PATH)" if field == "data_path" else f"HYBRID_SCORER_{field.upper()}"
