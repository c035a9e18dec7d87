"""`hybrid-scorer`: every command of the CLI (extract, train, tune, evaluate, ablate, promote, predict, serve,
feedback, monitor, db, api-key, alert-rules), each a thin layer over the package's modules."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from hybrid_scorer.config import DEFAULT_CONCURRENCY, PREDICTION_LOG, MonitorThresholds, get_settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.errors import ConfigurationError, HybridScorerError, MissingArtifactError
from hybrid_scorer.llm.backends import spec_help
from hybrid_scorer.llm.extract import DEFAULT_MAX_FAILURE_RATE
from hybrid_scorer.pipeline import Job
from hybrid_scorer.quality import METRICS
from hybrid_scorer.roles import Role

if TYPE_CHECKING:
    from hybrid_scorer.llm.store import FeatureStore

MODEL_HELP = "model directory, or a registry URI such as models:/hybrid-scorer@champion (default: models/current)"
EMBEDDER_HELP = (
    "LLM spec of a second backend for the embeddings alone, e.g. ollama:nomic-embed-text or"
    " openai:text-embedding-3-small (default: $HYBRID_SCORER_EMBEDDER, else the --llm backend embeds;"
    " predict and serve default to the model's own)"
)
PROMPT_HELP = (
    "prompt version under prompts/: assessment_v4 (the 1-5 ratings and topic of the title alone: no body text"
    " reaches the LLM), assessment_v2 (the same of the whole post) or assessment_v3 (v2 plus 12 yes/no questions,"
    " for feature group llm_questions; its LLM time against v2's: `python bench/extract.py --questions`)"
    " (default: $HYBRID_SCORER_PROMPT, else assessment_v4; predict and serve must use the model's own)"
)
SERVED_LLM_HELP = (
    "the LLM to call: 'none' for the content model alone; another spec is refused unless the model was trained"
    " with it (default: $HYBRID_SCORER_LLM when set, else the one the model's manifest names)"
)
EPILOG = "Settings can also come from HYBRID_SCORER_* environment variables (and ASKSCIENCE_CSV for the data)."


def _common(parser: argparse.ArgumentParser, llm_default: str | None = None) -> None:
    parser.add_argument("--data", type=Path, help="CSV of posts (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--cache-dir", type=Path, help="on-disk LLM cache (default: cache/)")
    parser.add_argument(
        "--features", type=Path, help="read and write LLM results in this Parquet feature store instead of the cache"
    )
    parser.add_argument(
        "--llm",
        default=llm_default,
        help=f"LLM spec: {spec_help()}, or 'none' for content features only"
        f" (default: {llm_default or '$HYBRID_SCORER_LLM, else embedded'})",
    )
    parser.add_argument("--embedder", help=EMBEDDER_HELP)
    parser.add_argument("--prompt", help=PROMPT_HELP)
    parser.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="parallel requests for remote LLM backends"
    )
    parser.add_argument(
        "--max-failure-rate",
        type=float,
        default=DEFAULT_MAX_FAILURE_RATE,
        help="fail when a larger share of LLM calls failed (default %(default)s): features missing for more"
        " posts than that are an error, not NaN columns to fit on",
    )
    parser.add_argument("--seed", type=int, help="seed for folds, bootstrap and LightGBM (default 42)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _job(args: argparse.Namespace, limit: int | None = None) -> Job:
    """Settings from the environment and flags, and the prepared posts (with the data report on stderr)."""
    settings = get_settings(
        data_path=args.data,
        cache_dir=args.cache_dir,
        features=args.features,
        seed=args.seed,
        embedder=args.embedder,
        prompt=args.prompt,
    )
    posts, report = prepare_posts(settings.data_path)
    print(report.summary(), file=sys.stderr)
    llm = args.llm if args.llm is not None else settings.llm
    return Job(
        posts.head(limit) if limit else posts,
        report,
        settings,
        llm,
        not args.quiet,
        args.concurrency,
        args.max_failure_rate,
    )


def cmd_extract(args: argparse.Namespace) -> int:
    from hybrid_scorer.llm.extract import extract, missing, post_texts
    from hybrid_scorer.llm.factory import make_client

    job = _job(args, args.limit)
    spec = job.llm or "embedded"
    started = time.perf_counter()
    store = _extract_with_ray(job, spec, args) if args.engine == "ray" else None
    client = make_client(spec, job.settings, store=store)
    try:
        result = extract(
            client,
            job.posts,
            assessments=not args.no_assess,
            embeddings=not args.no_embed,
            concurrency=args.concurrency,
            progress=not args.quiet,
            max_cost_usd=args.max_cost_usd,
        )
    except KeyboardInterrupt:
        print("\ninterrupted: finished posts are in the cache; rerun the same command to resume", file=sys.stderr)
        print(client.ledger.summary().render())
        return 130
    elapsed = time.perf_counter() - started
    out = Path(args.out) if args.out else job.settings.report_dir / "extraction"
    out.mkdir(parents=True, exist_ok=True)
    if result.assessments is not None:
        result.assessments.to_csv(out / "assessments.csv", index=False)
    client.ledger.save(out / "ledger.json")
    print(client.ledger.summary().render())
    print(f"{len(job.posts)} posts in {elapsed:.1f} s wall; feature table and ledger in {out}/")
    # what the cache lacks now is exactly what a rerun of this command sends
    redo = missing(client, post_texts(job.posts), not args.no_assess, not args.no_embed)
    print(f"a rerun sends {len(redo)} post(s) again" + (f" (first: {redo[0].post_id})" if redo else ": nothing"))
    if result.left:
        print(
            f"error: stopped at the cost cap of ${args.max_cost_usd:g}: {len(result.left)} post(s) left unsent"
            " (rerun the same command, with a higher --max-cost-usd, to resume: done posts are cached)",
            file=sys.stderr,
        )
        return 1
    failed = result.failure_summary(job.max_failure_rate)
    if failed:
        print(
            f"error: extraction failed: {failed} (rerun the same command: only failed posts are sent again)",
            file=sys.stderr,
        )
        return 1
    return 0


def _extract_with_ray(job: Job, spec: str, args: argparse.Namespace) -> FeatureStore:
    """The Ray engine fills the feature store; the local pass that follows reads it (all hits, no second
    read of the shards) and writes the same table and ledger a local run writes."""
    from hybrid_scorer.llm.engines import extract_with_ray
    from hybrid_scorer.llm.extract import post_texts

    if job.settings.features is None:
        raise ConfigurationError(
            "the ray engine writes a Parquet feature store: pass --features DIR (a shared path on a cluster)"
        )
    run = extract_with_ray(
        post_texts(job.posts),
        spec,
        job.settings,
        job.settings.features,
        assessments=not args.no_assess,
        embeddings=not args.no_embed,
        actors=args.actors,
        address=args.address,
        batch_size=args.batch_size,
    )
    print(
        f"ray: {run.sent} of {len(job.posts)} posts were missing from {job.settings.features};"
        f" sent to {args.actors} actor(s)"
    )
    if run.sent:
        print(run.ledger.summary().render())
    return run.store


def cmd_evaluate(args: argparse.Namespace) -> int:
    from hybrid_scorer.ablation import EVALUATE_CONFIGS, run_configs
    from hybrid_scorer.report import render_fold_table
    from hybrid_scorer.specs import SERVED, groups_of
    from hybrid_scorer.tracking import log_run

    job = _job(args)
    client = job.client()
    configs = EVALUATE_CONFIGS + ([SERVED[Role.HYBRID]] if client else [])
    enriched = job.enriched(groups_of(configs), client)
    results = run_configs(enriched, configs, job.settings, job.progress)
    table = render_fold_table(results)
    print(table)
    log_run(
        "evaluate",
        params={"data_sha256": job.report.sha256, "llm": job.llm, "n_posts": len(enriched)},
        metrics={f"evaluate.{c.key}.{m}": r.mean(m) for c, r in zip(configs, results, strict=True) for m in METRICS},
        tags={f"label.{c.key}": c.name for c in configs},
        text_artifacts={"evaluate.md": table},
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from hybrid_scorer.training import train_and_save

    job = _job(args)
    out = Path(args.out) if args.out else job.settings.model_dir
    for line in train_and_save(job, out, register_version=not args.no_register).summary():
        print(line)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    try:
        import optuna  # noqa: F401  (the search's sampler)
    except ImportError as exc:
        raise ConfigurationError("`hybrid-scorer tune` needs optuna: pip install 'hybrid-scorer[tune]'") from exc
    from hybrid_scorer.report import render_tuning
    from hybrid_scorer.specs import SERVED
    from hybrid_scorer.tuning import tune

    job = _job(args)
    config = SERVED[Role.HYBRID]
    client = job.client()
    enriched = job.enriched(config.groups, client)
    tuned = tune(
        enriched,
        config.key,
        lambda choice: config.make_scorer(job.settings, choice),
        job.settings,
        job.report.sha256,
        trials=args.trials,
        inner_folds=args.inner_folds,
        with_nested=not args.no_nested,
        report=lambda fold: print(f"outer fold {fold['fold']}: {fold}", file=sys.stderr),
        features=client.embedder.embedding_identity() if client else None,
    )
    path = tuned.save()
    print(f"chosen parameters written to {path} (train reads them)")
    if tuned.nested is not None:
        out = (args.out or job.settings.report_dir) / "tuning.md"
        out.write_text(render_tuning(tuned))
        print(f"nested estimate: Spearman {tuned.nested.spearman[0]:.3f} [{tuned.nested.spearman[1]:.3f},"
              f" {tuned.nested.spearman[2]:.3f}] ({out})")  # fmt: skip
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from hybrid_scorer.registry import PromotionRefusedError, promote

    settings = get_settings(prompt=args.prompt, embedder=args.embedder)
    try:
        print(promote(args.version, args.llm or settings.llm, settings, force=args.force))
    except PromotionRefusedError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from hybrid_scorer.ablation import run_ablation

    job = _job(args)
    path = run_ablation(job, args.out or job.settings.report_dir, n_boot=args.n_boot, docs=args.docs)
    print(
        f"report written to {path}"
        + (f"; results tables in {', '.join(map(str, args.docs))} updated" if args.docs else "")
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from hybrid_scorer.serving import PredictionInputError, Predictor
    from hybrid_scorer.serving.summary import describe

    settings = get_settings(features=args.features, embedder=args.embedder, prompt=args.prompt)
    predictor = Predictor(model_dir=args.model_dir, settings=settings, llm=args.llm)
    predictor.warm()
    post = {"title": args.title, "body": args.body, "flair": args.flair, "created_utc": args.created_utc}
    try:
        prediction = predictor.predict({k: v for k, v in post.items() if v is not None}, explain=True)
    except PredictionInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(prediction.model_dump(mode="json"), indent=2) if args.json else describe(prediction))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hybrid_scorer.serving.app import create_app
    from hybrid_scorer.serving.predictor import Predictor

    settings = get_settings(features=args.features, embedder=args.embedder, prompt=args.prompt)
    predictor = Predictor(model_dir=args.model_dir, settings=settings, llm=args.llm, log_path=args.log)
    app = create_app(predictor, settings.serve_threads)
    print(f"serving on http://{args.host}:{args.port} (docs at /docs; ready when /readyz says so)", file=sys.stderr)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        log_level="warning",
        timeout_graceful_shutdown=int(settings.serve_shutdown_grace_s),
    )
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from hybrid_scorer.monitoring import monitor_report

    settings = get_settings()
    try:
        thresholds = MonitorThresholds.model_validate({**settings.monitor.model_dump(), **dict(args.threshold or [])})
    except ValidationError as exc:
        raise ConfigurationError(f"--threshold: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from exc
    log_path = Path(args.log) if args.log else settings.log_path
    model_dir = Path(args.model_dir) if args.model_dir else settings.model_dir
    if args.model_dir and not model_dir.is_dir():  # a path given on purpose that is not there is a typo
        raise MissingArtifactError(f"--model-dir {model_dir}: no such directory (a release, e.g. models/current)")
    text, alerts = monitor_report(log_path, model_dir, thresholds, settings.database_url)
    print(text)
    return 1 if alerts and args.fail_on_alert else 0


def cmd_feedback(args: argparse.Namespace) -> int:
    """Realised scores from a CSV (prediction_id, score, optional observed_at) into the outcome store."""
    from hybrid_scorer.data import read_csv_text
    from hybrid_scorer.outcomes import Feedback, OutcomeStore, store_url
    from hybrid_scorer.serving.schemas import FEEDBACK_SHAPE, FeedbackInput, describe_errors

    settings = get_settings()
    table = read_csv_text(Path(args.file), "Give a CSV of prediction_id, score, optional observed_at.")
    missing = {"prediction_id", "score"} - set(table.columns)
    if missing:
        raise ConfigurationError(
            f"{args.file}: missing column(s) {sorted(missing)}; expected prediction_id, score, optional observed_at"
        )
    items, problems = [], []
    for line, row in enumerate(table.to_dict("records"), start=2):
        fields: dict[str, object] = {k: v for k, v in row.items() if k in FeedbackInput.model_fields and v != ""}
        with contextlib.suppress(KeyError, ValueError):  # the validation below names a bad or missing field
            fields["score"] = float(str(fields["score"]))  # a CSV's number is text; a JSON body's is not
        try:
            item = FeedbackInput.model_validate(fields)
        except ValidationError as exc:
            problems.append(f"line {line}: {describe_errors(exc.errors(), 'feedback', FEEDBACK_SHAPE)}")
            continue
        items.append(Feedback(item.prediction_id, item.score, item.observed_at or datetime.now(UTC)))
    if problems:
        shown = "; ".join(problems[:5])
        raise ConfigurationError(f"{args.file}: {len(problems)} row(s) invalid, nothing stored: {shown}")
    log_path = Path(args.log) if args.log else settings.log_path
    store = OutcomeStore(store_url(settings.database_url, log_path))
    print(f"stored {store.add_feedback(items)} realised score(s) in {store.where}; `hybrid-scorer monitor` reads them")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from hybrid_scorer.outcomes import OutcomeStore, store_url

    settings = get_settings()
    log_path = Path(args.log) if args.log else settings.log_path
    store = OutcomeStore(store_url(settings.database_url, log_path))
    print(f"{store.where}: schema at revision {store.upgrade()}")
    return 0


def cmd_api_key(args: argparse.Namespace) -> int:
    from hybrid_scorer.serving.access import new_key

    key, entry = new_key(args.name)
    print(f"key (give it to the caller, it is shown only now): {key}")
    print(f"entry (append to HYBRID_SCORER_API_KEYS or its file; it holds only a salted hash): {entry}")
    return 0


def cmd_alert_rules(args: argparse.Namespace) -> int:
    from hybrid_scorer.alerting import render_rules

    text = render_rules(get_settings().monitor)
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}; check it with `promtool check rules {args.out}`")
    else:
        print(text, end="")
    return 0


def _threshold(text: str) -> tuple[str, str]:
    """NAME=VALUE; the value is validated with the others (MonitorThresholds)."""
    name, _, value = text.partition("=")
    if name not in MonitorThresholds.model_fields:
        raise argparse.ArgumentTypeError(
            f"unknown threshold {name!r}; choose from {list(MonitorThresholds.model_fields)}"
        )
    return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybrid-scorer",
        description="Predict r/askscience post scores from content and LLM features.",
        epilog=EPILOG,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "extract",
        help="run the LLM over every post (cached, resumable)",
        epilog=EPILOG,
        description="Assess and embed every post with the LLM. Results go to the on-disk cache as "
        "they finish, so an interrupted run resumes where it stopped; writes "
        "assessments.csv (keyed by post_id, with provenance) and ledger.json.",
    )
    _common(p)
    p.add_argument("--limit", type=int, help="only the first N posts (after deduplication)")
    p.add_argument("--no-assess", action="store_true", help="skip the JSON assessments")
    p.add_argument("--no-embed", action="store_true", help="skip the hidden-state embeddings")
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (threads for remote backends); ray: an actor pool on Ray Data, writing the"
        " --features store (needs the [cluster] extra)",
    )
    p.add_argument(
        "--address", help="ray: the cluster to join (e.g. ray://head:10001 or auto); default: start one here"
    )
    p.add_argument("--actors", type=int, default=2, help="ray: actors, each with its own LLM (default 2)")
    p.add_argument("--batch-size", type=int, default=8, help="ray: posts per batch, the most a killed actor loses")
    p.add_argument("--out", help="where to write the table and ledger (default: <report dir>/extraction)")
    p.add_argument(
        "--max-cost-usd",
        type=float,
        help="stop before the run's LLM spend would pass this many dollars (cached posts are free); exits 1 with"
        " the count of posts left, and a rerun resumes",
    )
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser(
        "evaluate",
        help="5-fold grouped CV of the model against baselines",
        epilog=EPILOG,
        description="Cross-validate (5 folds grouped by normalized title) the median and "
        "RandomForest baselines, the content model and content + time_trend; with "
        "--llm also the served hybrid (full hybrid + stacked embedding features). Prints mean and std over folds.",
    )
    _common(p, llm_default="none")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "train",
        help="train the hybrid and the content (fallback) models and save them",
        epilog=EPILOG,
        description="Train on all posts and save models/current/{hybrid,content} "
        "(LightGBM text + JSON, with a manifest of metrics).",
    )
    _common(p)
    p.add_argument("--out", help="model directory (default: models/current)")
    p.add_argument("--no-register", action="store_true", help="do not register the models in the MLflow registry")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "tune",
        help="search LightGBM's parameters for the served hybrid, with a nested estimate of what it buys",
        epilog=EPILOG,
        description="The same search twice: inside each outer training fold (scored on held-out posts: the"
        " served model's expected Spearman, reports/tuning.md), then on all posts (the parameters train uses,"
        " written to hybrid_scorer/tuned/<config>.json). ~30 min on 2 cores with the defaults; rerun it when"
        " the data, the features or the LLM change. Needs optuna (the [tune] extra).",
    )
    _common(p)
    p.add_argument("--trials", type=int, default=12, help="optuna trials per search (default 12)")
    p.add_argument("--inner-folds", type=int, default=3, help="grouped folds scoring each trial (default 3)")
    p.add_argument(
        "--no-nested", action="store_true", help="only the final search; keeps the nested estimate on record"
    )
    p.add_argument("--out", type=Path, help="where tuning.md goes (default: $HYBRID_SCORER_REPORT_DIR, else reports)")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser(
        "promote",
        help="make a registered model version the champion that serving loads (with a gate)",
        epilog=EPILOG,
        description="Move the 'champion' alias of the registered model 'hybrid-scorer' to a version, only if it"
        " was trained with the LLM setup serving uses and its expected Spearman (the nested estimate for tuned"
        " parameters, else the CV) is not below the lower end of"
        " the current champion's 95% bootstrap interval. Rollback: promote the previous version with --force.",
    )
    p.add_argument("--version", type=int, help="the version to promote (default: the newest)")
    p.add_argument("--llm", help="the LLM spec serving will use (default: $HYBRID_SCORER_LLM, else embedded)")
    p.add_argument("--embedder", help=EMBEDDER_HELP)
    p.add_argument("--prompt", help=PROMPT_HELP)
    p.add_argument("--force", action="store_true", help="skip the Spearman comparison (rollback); the LLM check stays")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser(
        "ablate",
        help="every feature group on the same folds, with intervals, cost and plots",
        epilog=EPILOG,
        description="Writes reports/ablation.md with PNG plots.",
    )
    _common(p)
    p.add_argument("--out", type=Path, help="report directory (default: $HYBRID_SCORER_REPORT_DIR, else reports)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for intervals")
    p.add_argument(
        "--docs",
        type=Path,
        nargs="+",
        help="markdown files whose results block (between the results markers) is re-rendered from the report",
    )
    p.set_defaults(func=cmd_ablate)

    p = sub.add_parser(
        "predict",
        help="score one post with the trained model",
        description="Score one post; prints the score, its likely range, the chance of reaching 1,000 and what the"
        " LLM did (--json: the whole prediction with latency, LLM usage and fallback).",
    )
    p.add_argument("--json", action="store_true", help="print the prediction as JSON")
    p.add_argument("--title", required=True, help="the post's title (1-300 characters)")
    p.add_argument("--body", default="", help="the post's text (default: none)")
    p.add_argument("--flair", help='its flair, e.g. Physics (default: unknown; "" for a post published without one)')
    p.add_argument("--created-utc", help="ISO time of posting (UTC); default now")
    p.add_argument("--model-dir", "--model", help=MODEL_HELP)
    p.add_argument(
        "--features", type=Path, help="read LLM results from this Parquet feature store instead of the cache"
    )
    p.add_argument("--llm", help=SERVED_LLM_HELP)
    p.add_argument("--embedder", help=EMBEDDER_HELP)
    p.add_argument("--prompt", help=PROMPT_HELP)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "serve",
        help="serve predictions over HTTP (FastAPI; /v1/predict, /healthz, /readyz, /metrics)",
        epilog=EPILOG,
        description="Start the HTTP service: the page at /, POST /v1/predict and /v1/predict/batch, POST "
        "/v1/feedback and /v1/feedback/batch (delayed labels), GET /v1/model, /v1/flairs, /healthz, "
        "/readyz (503 until the models are loaded and the LLM is warm), /metrics (Prometheus). One worker "
        "process; SIGTERM lets in-flight requests finish. OpenAPI docs at /docs.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model-dir", "--model", help=MODEL_HELP)
    p.add_argument(
        "--features", type=Path, help="read LLM results from this Parquet feature store instead of the cache"
    )
    p.add_argument("--llm", help=SERVED_LLM_HELP)
    p.add_argument("--embedder", help=EMBEDDER_HELP)
    p.add_argument("--prompt", help=PROMPT_HELP)
    p.add_argument("--log", type=Path, help=f"prediction log (default: <log dir>/{PREDICTION_LOG})")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "feedback",
        help="record realised scores of earlier predictions (delayed labels) from a CSV file",
        description="Read FILE (columns prediction_id, score, optional observed_at) and store the realised"
        " scores in the outcome store (HYBRID_SCORER_DATABASE_URL, else the SQLite file beside the prediction"
        " log), where `hybrid-scorer monitor` and the service's /metrics join them to the predictions: realised"
        " Spearman, RMSE and interval coverage per cohort. The same as POST /v1/feedback.",
    )
    p.add_argument("file", type=Path, help="CSV with prediction_id,score[,observed_at]")
    p.add_argument("--log", help=f"the prediction log the ids come from (default: <log dir>/{PREDICTION_LOG})")
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser(
        "db",
        help="the outcome store's schema: `hybrid-scorer db upgrade` applies its migrations",
        description="Apply the outcome store's Alembic migrations (HYBRID_SCORER_DATABASE_URL, else the SQLite"
        " beside the log). `serve`, `feedback` and `monitor` also apply them the first time the database answers;"
        " run this before rolling out replicas of a new version (e.g. a Kubernetes Job).",
    )
    p.add_argument("action", choices=["upgrade"])
    p.add_argument("--log", help="the prediction log whose SQLite store to upgrade when no database URL is set")
    p.set_defaults(func=cmd_db_upgrade)

    p = sub.add_parser(
        "api-key",
        help="make an API key for the service (prints the key once, and the salted hash to configure)",
        description="Print a new key `hs_<NAME>_<secret>` for a caller, and the entry `<NAME>:<salt>:<sha256>` to"
        " add to HYBRID_SCORER_API_KEYS (comma-separated entries, or a file with one per line). With keys"
        " configured, the /v1/ routes answer 401 without one; the key's NAME goes into the prediction log.",
    )
    p.add_argument("name", help="the key's id: 1-32 letters, digits or '-' (who it is for)")
    p.set_defaults(func=cmd_api_key)

    p = sub.add_parser(
        "alert-rules",
        help="Prometheus recording and alert rules with the monitor's thresholds",
        description="Print (or write) the Prometheus rules for the service: p99 latency, fallbacks, LLM failures,"
        " cache hits, LLM spend and the spend limit, readiness, realised quality. Thresholds come from"
        " HYBRID_SCORER_MONITOR (the same ones `hybrid-scorer monitor` uses); deploy/prometheus/rules.yml holds"
        " the defaults.",
    )
    p.add_argument("--out", type=Path, help="write the rules here instead of printing them")
    p.set_defaults(func=cmd_alert_rules)

    p = sub.add_parser(
        "monitor",
        help="latency, cost, fallback and drift summary of the prediction log",
        description="Summarize logs/predictions.jsonl against the training reference and flag "
        "thresholds that are crossed.",
    )
    p.add_argument("--log", help=f"prediction log (default: <log dir>/{PREDICTION_LOG})")
    p.add_argument(
        "--threshold",
        type=_threshold,
        action="extend",
        nargs="+",
        metavar="NAME=VALUE",
        help="override an alert threshold, e.g. p99_latency_ms=100 (names:"
        f" {', '.join(MonitorThresholds.model_fields)}; also HYBRID_SCORER_MONITOR as JSON)",
    )
    p.add_argument("--model-dir", help="model whose training reference to compare with (default: models/current)")
    p.add_argument("--fail-on-alert", action="store_true", help="exit 1 when any threshold is crossed")
    p.set_defaults(func=cmd_monitor)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except HybridScorerError as exc:  # expected, with its fix in the message; anything else is a bug: raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
