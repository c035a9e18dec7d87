"""LLMIdentity: which LLM setup produced a model's LLM columns (the chat LLM, the embedder, the prompt),
as one value. Training records it in the manifest, serving compares the client it would call against
it, and the registry's promotion gate compares the serving configuration against a candidate's, all
with `mismatches`. Building one from a spec builds backends, never an SDK client (no API key needed).

The fields are declared once, in llm/fields.py, and the manifest is made of them too, so a manifest is
read (`from_manifest`) and written (`manifest_fields`) without the LLM layer knowing the model's classes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from hybrid_scorer.config import Settings
from hybrid_scorer.llm.backends import make_backend
from hybrid_scorer.llm.client import LLMClient
from hybrid_scorer.llm.fields import LLMFields
from hybrid_scorer.llm.prompts import PromptTemplate, load_prompt
from hybrid_scorer.llm.protocol import Backend, backend_spec


class LLMIdentity(LLMFields):
    """The fields of an LLM setup that exists: its model and prompt are required."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @model_validator(mode="after")
    def _names_its_llm(self) -> LLMIdentity:
        if not self.llm_model or not self.prompt_version:
            raise ValueError("an LLM identity names its model (llm_model) and its prompt (prompt_version)")
        return self

    @classmethod
    def from_parts(
        cls, backend: Backend, embedder: Backend, prompt: PromptTemplate, spec: str | None, embedder_spec: str | None
    ) -> LLMIdentity:
        return cls(
            llm_spec=spec,
            llm_model=backend_spec(backend.name, backend.model),
            prompt_version=prompt.id,
            embedder_spec=embedder_spec,
            embedding_model=backend_spec(embedder.name, embedder.embedding_model),
            llm_identity=backend.identity(),
            embedding_identity=embedder.embedding_identity(),
        )

    @classmethod
    def from_client(cls, client: LLMClient, spec: str | None, embedder_spec: str | None) -> LLMIdentity:
        return cls.from_parts(client.backend, client.embedder, client.prompt, spec, embedder_spec)

    @classmethod
    def from_spec(cls, spec: str, settings: Settings) -> LLMIdentity:
        """What a client for `spec` with these settings (prompt, embedder) would be, without making one."""
        backend = make_backend(spec, settings)
        embedder = make_backend(settings.embedder, settings) if settings.embedder else backend
        return cls.from_parts(backend, embedder, load_prompt(settings.prompt), spec, settings.embedder)

    @classmethod
    def from_manifest(cls, manifest: BaseModel | dict[str, Any]) -> LLMIdentity | None:
        """The identity a model manifest records (None for a model trained without an LLM)."""
        fields = manifest.model_dump() if isinstance(manifest, BaseModel) else manifest
        return cls.model_validate(fields) if fields.get("llm_model") else None

    def manifest_fields(self) -> dict[str, Any]:
        return self.model_dump()

    def mismatches(self, serving: LLMIdentity) -> list[str]:
        """What differs between this (trained) setup and the one serving would use, in words; [] when
        the model's LLM columns would mean the same thing."""
        problems = []
        if self.llm_model != serving.llm_model:
            problems.append(
                f"the model was trained with LLM {self.llm_model!r}, serving would call {serving.llm_model!r}"
            )
        if self.embedding_model is not None and self.embedding_model != serving.embedding_model:
            fix = (
                f"serve with --embedder {self.embedder_spec}"
                if self.embedder_spec
                else "serve without --embedder: the chat LLM embedded"
            )
            problems.append(
                f"the model was trained on embeddings of {self.embedding_model!r}, serving would embed with"
                f" {serving.embedding_model!r} ({fix})"
            )
        if self.prompt_version != serving.prompt_version:
            problems.append(
                f"the model was trained with prompt {self.prompt_version}, serving has {serving.prompt_version}"
            )
        seen: set[str] = set()  # a field both identities carry (the weights' hash, the pooling) is named once
        for what, trained, served in (
            ("embedder", self.embedding_identity, serving.embedding_identity),
            ("LLM", self.llm_identity, serving.llm_identity),
        ):
            for key in _differing(trained, served):
                if key not in seen:
                    seen.add(key)
                    problems.append(
                        f"the model's {what} was set up with {key}={(trained or {}).get(key)!r}, serving's with"
                        f" {key}={(served or {}).get(key)!r}{SETTING_OF.get(key, '')}"
                    )
        return problems


# the settings behind an identity's fields, to name in the fix
SETTING_OF = {"pooling": " (HYBRID_SCORER_LLM_POOLING)"}


def _differing(trained: dict[str, Any] | None, served: dict[str, Any] | None) -> list[str]:
    """The identity fields (weights, decoding, pooling) in which two setups differ. The runtime's version is
    not one: a llama-cpp-python upgrade re-reads every post (it is in the cache keys) but means the same
    columns. A manifest from before identities were recorded has none to compare."""
    if not trained or not served:
        return []
    return [k for k in sorted(trained.keys() | served.keys()) if k != "runtime" and trained.get(k) != served.get(k)]
