"""The model registry on MLflow: every `train` registers the hybrid and content models as one version of
`hybrid-scorer`; `promote` moves the `champion` alias through a gate; `serve`/`predict` load by alias.

A version's artifacts are the pickle-free model directory (LightGBM text, JSON feature state, manifests)
and the pyfunc wrapper as code (registry_pyfunc.py). Rollback is moving the alias back."""

from __future__ import annotations

import importlib.metadata
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from hybrid_scorer.config import Settings
from hybrid_scorer.errors import HybridScorerError, MissingArtifactError
from hybrid_scorer.llm.identity import LLMIdentity
from hybrid_scorer.model import ModelManifest
from hybrid_scorer.roles import SERVING_ORDER, Role
from hybrid_scorer.tracking import EXPERIMENT

log = logging.getLogger(__name__)
REGISTERED_NAME = "hybrid-scorer"
CHAMPION = "champion"
PYFUNC_CODE = Path(__file__).with_name("registry_pyfunc.py")


class PromotionRefusedError(HybridScorerError, ValueError):
    """The candidate may not become champion; the message says which check failed and what to do."""


def _client():  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient()


def _requirements() -> list[str]:
    """The project's own runtime dependencies (pinning nothing MLflow would have to guess)."""
    requires = importlib.metadata.requires("hybrid-scorer") or []
    return [r for r in requires if "extra ==" not in r]


def _signature():  # type: ignore[no-untyped-def]
    """Posts in, scores out, as registry_pyfunc.py reads and writes them (for MLflow's UI and checks)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    optional = [ColSpec("string", name, required=False) for name in ("body", "flair", "created_utc")]
    outputs = [ColSpec("double", "score"), ColSpec("double", "log_score"), ColSpec("string", "model_version")]
    outputs += [ColSpec("boolean", "fallback"), ColSpec("string", "error", required=False)]
    return ModelSignature(inputs=Schema([ColSpec("string", "title"), *optional]), outputs=Schema(outputs))


def register(model_dir: Path, data_sha256: str) -> int:
    """Log `model_dir` (content/ and hybrid/) as a new version of the registered model; returns it.
    The version's tags carry the lineage and the numbers the promotion gate reads."""
    import mlflow

    mlflow.set_experiment(EXPERIMENT)
    manifest = served_manifest(model_dir)
    with mlflow.start_run(run_name="register"):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            artifacts={"models": str(model_dir)},
            registered_model_name=REGISTERED_NAME,
            pip_requirements=_requirements(),
            signature=_signature(),
        )
    version = int(info.registered_model_version)
    tags = {
        "data_sha256": data_sha256,
        "feature_groups": "+".join(manifest.feature_groups),
        "llm_spec": manifest.llm_spec or "none",
        "llm_model": manifest.llm_model or "none",
        "prompt_version": manifest.prompt_version or "none",
        **{k: f"{v:.6f}" for k, v in manifest.metrics.items()},
    }
    identity = LLMIdentity.from_manifest(manifest)
    if identity is not None:  # the whole setup, for the promotion gate: compared as serving compares it
        tags["llm_identity"] = identity.model_dump_json()
    client = _client()
    for key, value in tags.items():
        client.set_model_version_tag(REGISTERED_NAME, str(version), key, value)
    return version


def served_manifest(model_dir: Path) -> ModelManifest:
    """The manifest of the model `predict()` serves first: the hybrid if there is one, else content."""
    for name in SERVING_ORDER:
        if (model_dir / name / "manifest.json").is_file():
            return ModelManifest.model_validate_json((model_dir / name / "manifest.json").read_text())
    raise MissingArtifactError(f"no trained model in {model_dir}: run `hybrid-scorer train`")


@dataclass
class Candidate:
    version: int
    tags: dict[str, str]

    @property
    def spearman(self) -> float:
        """The expected Spearman (training.py: the nested estimate for tuned parameters, else the CV)."""
        return float(self.tags.get("expected_spearman", self.tags["cv_spearman"]))

    @property
    def identity(self) -> LLMIdentity | None:
        return LLMIdentity.model_validate_json(self.tags["llm_identity"]) if "llm_identity" in self.tags else None

    @property
    def spearman_low(self) -> float:
        return float(self.tags.get("expected_spearman_ci_low", self.tags.get("cv_spearman_ci_low", self.spearman)))


def _version(version: int | None) -> Candidate:
    client = _client()
    if version is None:
        versions = client.search_model_versions(f"name='{REGISTERED_NAME}'")
        if not versions:
            raise PromotionRefusedError(f"no version of {REGISTERED_NAME!r} is registered: run `hybrid-scorer train`")
        version = max(int(v.version) for v in versions)
    found = client.get_model_version(REGISTERED_NAME, str(version))
    return Candidate(int(found.version), dict(found.tags))


def champion() -> Candidate | None:
    from mlflow.exceptions import MlflowException

    try:
        found = _client().get_model_version_by_alias(REGISTERED_NAME, CHAMPION)
    except MlflowException:
        return None
    return Candidate(int(found.version), dict(found.tags))


def promote(version: int | None, serving_llm: str, settings: Settings, force: bool = False) -> str:
    """Move `champion` to `version` (default: the newest) if (1) the model was trained with the LLM setup
    serving will use (chat LLM, embedder, prompt: LLMIdentity.mismatches, as serving checks it) and
    (2) unless `force`, its expected Spearman is not below the lower end of the current champion's 95%
    bootstrap interval. Returns what happened; raises PromotionRefusedError."""
    candidate = _version(version)
    trained = candidate.identity
    if trained is not None:
        # serving embeds with the model's own embedder unless told otherwise (Predictor.load)
        settings = settings.model_copy(update={"embedder": settings.embedder or trained.embedder_spec})
        problems = trained.mismatches(LLMIdentity.from_spec(serving_llm, settings))
        if problems:
            raise PromotionRefusedError(
                f"version {candidate.version}: {'; '.join(problems)}: retrain with the serving configuration,"
                f" or serve with --llm {trained.llm_spec}"
            )
    current = champion()
    if current is not None and current.version == candidate.version:
        return f"version {candidate.version} is already {CHAMPION}"
    if current is not None and not force and candidate.spearman < current.spearman_low:
        raise PromotionRefusedError(
            f"version {candidate.version} has expected Spearman {candidate.spearman:.3f}, below the 95% interval of the"
            f" {CHAMPION} (version {current.version}: {current.spearman:.3f}, interval from"
            f" {current.spearman_low:.3f}); keep the {CHAMPION}, or pass --force to promote it anyway"
        )
    _client().set_registered_model_alias(REGISTERED_NAME, CHAMPION, str(candidate.version))
    was = f" (was version {current.version})" if current else ""
    return f"{CHAMPION} is now version {candidate.version}{was}: expected Spearman {candidate.spearman:.3f}"


def resolve_model_dir(reference: str | Path) -> Path:
    """A model directory, or a registry URI (`models:/hybrid-scorer@champion`, `models:/hybrid-scorer/3`)
    downloaded to a local directory."""
    text = str(reference)
    if not text.startswith("models:/"):
        return Path(text)
    import mlflow
    from mlflow.exceptions import MlflowException

    if "MLFLOW_TRACKING_URI" not in os.environ and not Path("mlflow.db").is_file():  # MLflow would create an empty one
        raise MissingArtifactError(
            f"{text}: no registry here (no mlflow.db in {Path.cwd()}): run from the directory `hybrid-scorer"
            " train` ran in, or set MLFLOW_TRACKING_URI"
        )
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text))
    except MlflowException as exc:  # no such model, version or alias in this tracking store
        raise MissingArtifactError(
            f"{text}: {exc.message} (the registry is MLFLOW_TRACKING_URI, else mlflow.db in the working"
            " directory; `hybrid-scorer train` registers, `hybrid-scorer promote` sets the champion)"
        ) from None
    found = next((p.parent for p in local.rglob("manifest.json") if p.parent.name == Role.CONTENT), None)
    if found is None:
        raise MissingArtifactError(f"{text} holds no hybrid-scorer model directory")
    return found.parent
