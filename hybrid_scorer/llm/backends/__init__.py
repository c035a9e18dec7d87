"""The backend registry. A spec string `<name>[:<model>]` picks a backend by its `name`; every module in
this package that defines `BACKEND` (a class following `hybrid_scorer.llm.protocol.Backend`, with its
pydantic `Options` model) is one entry, so adding a backend is adding one file. Heavy libraries
(llama_cpp, openai, ollama) are imported by the backends when they are built, not here."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from hybrid_scorer.config import Settings, get_settings
from hybrid_scorer.errors import ConfigurationError
from hybrid_scorer.llm.protocol import Backend


@cache
def registry() -> dict[str, type[Backend]]:
    """name -> backend class, for every module of this package that defines BACKEND."""
    found: dict[str, type[Backend]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        backend = getattr(module, "BACKEND", None)
        if backend is not None:
            found[backend.name] = backend
    return found


def spec_help() -> str:
    return "embedded | embedded:/path/model.gguf | ollama:<model> | openai:<model> | mock"


def make_backend(spec: str, settings: Settings | None = None) -> Backend:
    """The backend a spec names, e.g. `embedded`, `ollama:qwen2.5:7b`, `openai:gpt-4o-mini`."""
    name, _, model = spec.partition(":")
    backends = registry()
    if name not in backends:
        raise ConfigurationError(f"unknown LLM spec {spec!r}; expected {spec_help()} (backends: {sorted(backends)})")
    return backends[name].from_spec(model, settings or get_settings())
