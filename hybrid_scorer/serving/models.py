"""The models a service scores with, loaded from one release and checked to belong together.

The hybrid needs its LLM (the one it was trained with: same backend, model, embedder and prompt) behind
the service's limits; the content model, trained without LLM features in the same run, answers when the
LLM cannot. Loading is everything `Predictor` does before its first prediction, kept apart so that the
predictor only scores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hybrid_scorer.config import Settings
from hybrid_scorer.errors import MissingArtifactError, ModelMismatchError
from hybrid_scorer.features.matrix import llm_needs
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.identity import LLMIdentity
from hybrid_scorer.llm.usage import UsageLedger
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.pipeline import client_for
from hybrid_scorer.registry import resolve_model_dir
from hybrid_scorer.roles import Role
from hybrid_scorer.serving.llm_features import LLMFeatures
from hybrid_scorer.serving.llm_queue import LLMQueue
from hybrid_scorer.serving.spend import SpendLimit

LEDGER_KEEP = 10_000  # a service runs for weeks: its ledger keeps the recent calls, not every one


@dataclass(frozen=True)
class ServedModels:
    """`content` always; `hybrid` with `llm_features` (its LLM's outputs under the service's limits) when
    the release has one and an LLM is served."""

    model_dir: Path  # the release the models came from (a registry alias resolved once)
    content: HybridScorer
    hybrid: HybridScorer | None = None
    llm_features: LLMFeatures | None = None

    @classmethod
    def load(
        cls,
        model_ref: Path | str,
        settings: Settings,
        spend: SpendLimit,
        budget_ms: float,
        client: LLMClient | None = None,
        llm: str | None = None,
    ) -> ServedModels:
        """`model_ref`: a directory or models:/hybrid-scorer@champion; `client`: the LLM to call (default:
        `llm`, else HYBRID_SCORER_LLM when set, else the one the hybrid's manifest names); `llm="none"` serves
        the content model alone."""
        llm = llm or (settings.llm if "llm" in settings.model_fields_set else None)
        # resolved once: a release published while this loads cannot mix two trainings (releases.py)
        model_dir = resolve_model_dir(model_ref).resolve()
        content_dir, hybrid_dir = model_dir / Role.CONTENT, model_dir / Role.HYBRID
        if not content_dir.is_dir():
            inside = (model_dir / "manifest.json").is_file()  # one model of a release, not the release
            raise MissingArtifactError(
                f"{model_dir} is one model of a release: point at the release, {model_dir.parent}"
                if inside
                else f"no trained model in {model_dir}: run `make run` or `hybrid-scorer train` first"
            )
        content = HybridScorer.load(content_dir)
        if not hybrid_dir.is_dir() or llm == "none":
            return cls(model_dir, content)
        hybrid = HybridScorer.load(hybrid_dir)
        manifest = hybrid.manifest_
        assert manifest is not None  # load() always reads one
        # the embedder the model was trained with, unless the settings name one
        settings = settings.model_copy(update={"embedder": settings.embedder or manifest.embedder_spec})
        client = client or client_for(llm or manifest.llm_spec, settings)
        if client is None:
            return cls(model_dir, content)
        check_client(hybrid, client)
        client.ledger = UsageLedger(client.ledger.backend, client.ledger.prices, keep=LEDGER_KEEP)
        queue = LLMQueue(client.backend.max_concurrency or settings.llm_concurrency, budget_ms)
        return cls(model_dir, content, hybrid, LLMFeatures(client, llm_needs(hybrid.groups), queue, spend, budget_ms))

    @property
    def client(self) -> LLMClient | None:
        return self.llm_features.client if self.llm_features is not None else None

    def by_role(self) -> Iterator[tuple[Role, HybridScorer]]:
        """The loaded models, the hybrid first (the serving order)."""
        for role, model in ((Role.HYBRID, self.hybrid), (Role.CONTENT, self.content)):
            if model is not None:
                yield role, model

    def warm(self) -> None:
        """Load the LLM itself and check its embedding width: the first request then loads nothing."""
        if self.hybrid is not None and self.llm_features is not None:
            self.llm_features.warm(self.hybrid.embedding_width())

    def close(self) -> None:
        if self.llm_features is not None:
            self.llm_features.close()


def check_client(model: HybridScorer, client: LLMClient) -> None:
    """Refuse to serve a hybrid with an LLM setup other than the one it was trained with (its columns
    would mean something else): same backend and model, same embedder, same prompt text."""
    trained = LLMIdentity.from_manifest(model.manifest_) if model.manifest_ is not None else None
    if trained is None:
        raise ModelMismatchError("the hybrid model records no LLM: retrain it with `hybrid-scorer train --llm <spec>`")
    problems = trained.mismatches(LLMIdentity.from_client(client, None, None))
    if problems:
        raise ModelMismatchError(
            "; ".join(problems) + f": serve with --llm {trained.llm_spec or '?'} and the prompt and settings it was"
            " trained with, or retrain with `hybrid-scorer train --llm <spec>`"
        )
