"""The layering the design promises, checked on the source: imports only run downwards, never in a cycle,
and no module imports the package root. data -> llm -> features -> model -> evaluation/serving -> cli."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hybrid_scorer"

# Lower layers first; a module may import its own layer (without cycles) and any layer below it.
LAYERS: list[tuple[str, ...]] = [
    ("version", "config", "target", "errors", "quality", "roles", "sentences"),
    (
        "data",
        "intervals",
        "llm.schema",
        "llm.ratings",
        "llm.sanitize",
        "llm.prompts",
        "llm.protocol",
        "llm.cache",
        "llm.store",
        "llm.usage",
        "llm.fields",
    ),
    ("llm.client", "llm.backends"),
    ("llm.factory", "llm.extract", "llm.engines", "llm.identity"),
    ("features",),
    ("forests", "marginal", "rowforest"),
    ("model", "baselines", "evaluation"),
    ("tuning", "steering", "fits"),
    ("specs", "monitoring", "tracking", "pipeline", "outcomes", "alerting"),
    ("plots",),
    ("calibrated", "report", "training", "serving", "registry", "releases"),
    ("ablation", "registry_pyfunc"),
    ("cli",),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _rank(module: str) -> int:
    for rank, layer in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in layer):
            return rank
    raise AssertionError(f"hybrid_scorer.{module} is in no layer of tests/test_architecture.py: place it")


def _imports(path: Path) -> set[str]:
    """Every hybrid_scorer module this file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hybrid_scorer":
            found.add(node.module.removeprefix("hybrid_scorer").lstrip("."))
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("hybrid_scorer").lstrip(".")
                for a in node.names
                if a.name.startswith("hybrid_scorer")
            }
    return found


def _graph() -> dict[str, set[str]]:
    return {
        _module_name(p): _imports(p)
        for p in PACKAGE.rglob("*.py")
        if _module_name(p)  # the package root itself is the public facade, above everything
    }


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} (layer {_rank(module)}) imports {target} (layer {_rank(target)})"
        for module, imported in graph.items()
        for target in imported
        if target and _rank(target) > _rank(module)
    ]


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    # `from hybrid_scorer.llm.backends import x` inside llm/backends/foo.py names its own package: no cycle
    edges = {m: {t for t in ts if t and t != m and not m.startswith(t + ".")} for m, ts in graph.items()}
    try:
        list(TopologicalSorter(edges).static_order())
    except CycleError as exc:
        return list(exc.args[1])
    return None


def test_no_submodule_imports_the_package_root() -> None:
    offenders = [m for m, imported in _graph().items() if "" in imported]
    assert not offenders, f"these modules import hybrid_scorer itself (use hybrid_scorer.version etc.): {offenders}"


def test_imports_only_run_downwards() -> None:
    upward = upward_imports(_graph())
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_there_is_no_import_cycle() -> None:
    cycle = import_cycle(_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle or [])}"


# The placement rule (hybrid_scorer/__init__.py): what the service may not reach.
EXPERIMENT_MODULES = ("evaluation", "baselines", "ablation", "report", "plots", "tuning")


def reachable(graph: dict[str, set[str]], roots: list[str]) -> set[str]:
    """Every module the roots import, directly or through others, at module level or in functions."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        module = stack.pop()
        if module not in seen:
            seen.add(module)
            stack.extend(t for t in graph.get(module, ()) if t)
    return seen


def tools_served(graph: dict[str, set[str]]) -> list[str]:
    served = reachable(graph, [m for m in graph if m == "serving" or m.startswith("serving.")])
    return sorted(m for m in served if m.split(".")[0] in EXPERIMENT_MODULES)


def test_the_served_path_reaches_no_experiment_code() -> None:
    offenders = tools_served(_graph())
    assert not offenders, f"serving reaches experiment modules (move what it needs lower): {offenders}"


def test_the_service_runs_without_matplotlib() -> None:
    """matplotlib is the `evaluation` extra's: importing the service and the CLI must not load it."""
    code = (
        "import sys, hybrid_scorer.serving.app, hybrid_scorer.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'optuna')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded


def role_literals(path: Path) -> list[str]:
    """Where a file names a served model's role as a bare string ("hybrid" anywhere, "content" as a path
    part: a chat message's "content" is another word) instead of roles.Role."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        path_part = node.right if isinstance(node, ast.BinOp) else None
        if (isinstance(node, ast.Constant) and node.value == "hybrid") or (
            isinstance(path_part, ast.Constant) and path_part.value == "content"
        ):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_roles_have_one_name() -> None:
    offenders = [hit for p in PACKAGE.rglob("*.py") if p.name != "roles.py" for hit in role_literals(p)]
    assert not offenders, f"role names written as strings (use hybrid_scorer.roles.Role): {offenders}"


def test_interval_levels_are_chosen_once(tmp_path: Path) -> None:
    """intervals.LEVELS decides the levels; the API's fields, the outcome store's columns (as migrated,
    not only as declared) and the realised coverage follow it, and nothing else writes 80/90 as a name."""
    import sqlalchemy as sa

    from hybrid_scorer.intervals import LEVELS, bound_columns, interval_field
    from hybrid_scorer.outcomes import OutcomeStore, store_url
    from hybrid_scorer.serving.schemas import Prediction

    assert {f for f in Prediction.model_fields if f.startswith("interval_")} == {interval_field(x) for x in LEVELS}
    store = OutcomeStore(store_url(None, tmp_path / "predictions.jsonl"))
    store.upgrade()
    migrated = {c["name"] for c in sa.inspect(store.engine).get_columns("predictions")}
    assert {c for x in LEVELS for c in bound_columns(x)} == {c for c in migrated if c.startswith(("low_", "high_"))}
    named = re.compile(r"""["'](?:interval|low|high|coverage)_\d+["']""")
    offenders = [
        f"{p.relative_to(PACKAGE)}:{n}"
        for p in PACKAGE.rglob("*.py")
        if "migrations" not in p.parts
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if named.search(line)
    ]
    assert not offenders, f"interval level names written by hand (derive them from intervals.LEVELS): {offenders}"


def manifest_writes(path: Path) -> list[str]:
    """Where a file assigns a fitted model's manifest or one of its fields (x.manifest_ = ...,
    x.manifest_.metrics |= ...)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        )
        for target in targets:
            chain = target
            while isinstance(chain, ast.Attribute):
                if chain.attr == "manifest_":
                    found.append(f"{path.name}:{node.lineno}")
                    break
                chain = chain.value
    return found


def test_only_the_estimators_write_a_fitted_manifest() -> None:
    """A model's manifest is fitted state: HybridScorer.fit writes it, CalibratedScorer.fit adds the
    calibration and the provenance; training, serving and the tools only read it."""
    owners = {"model.py", "calibrated.py"}
    offenders = [hit for p in PACKAGE.rglob("*.py") if p.name not in owners for hit in manifest_writes(p)]
    assert not offenders, f"a manifest written outside the estimators (fit a CalibratedScorer): {offenders}"


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """The old shapes these checks exist to prevent: the ablation <-> report cycle, training importing
    the served configurations from the ablation, and the LLM layer reaching into the model."""
    assert import_cycle({"ablation": {"report"}, "report": {"ablation"}}) is not None
    assert upward_imports({"training": {"ablation"}}) and upward_imports({"llm.client": {"model"}})
    assert not upward_imports({"ablation": {"report", "specs"}, "features.llm": {"llm.schema"}})
    # the old shape: the realised-quality monitor reaching evaluation.py for its bootstrap
    assert tools_served({"serving.app": {"monitoring"}, "monitoring": {"outcomes"}, "outcomes": {"evaluation"}})
    # and a role written as a string, the way serving/predictor.py once found its model directories
    old = tmp_path / "old_roles.py"
    old.write_text('def dirs(d):\n    return d / "content", d / "hybrid"\n')
    assert len(role_literals(old)) == 2
    # and training writing the calibration into a fitted model from outside, as it once did
    old.write_text(
        "def calibrate(model, scheme):\n    model.manifest_.intervals = scheme\n    model.manifest_ = None\n"
    )
    assert len(manifest_writes(old)) == 2


def test_every_route_but_the_probes_and_docs_waits_for_readiness(tmp_path: Path) -> None:
    """A route added to the service cannot forget readiness: every route of the OpenAPI schema but the
    probes answers 503 while the service is not ready (the app's lifespan, which warms it, never runs)."""
    from fastapi.testclient import TestClient

    from hybrid_scorer.serving.app import create_app
    from hybrid_scorer.serving.predictor import Predictor

    client = TestClient(create_app(Predictor(tmp_path / "no-model", log_path=tmp_path / "p.jsonl")))
    paths = client.get("/openapi.json").json()["paths"]
    probes = {"/healthz", "/metrics"}
    assert set(paths) >= probes | {"/readyz", "/v1/predict", "/v1/predict/batch", "/v1/model"}
    answers = {
        (method, path): client.request(method, path, json={}).status_code
        for path, operations in paths.items()
        for method in operations
        if path not in probes
    }
    assert answers and all(status == 503 for status in answers.values()), answers
    assert all(client.get(path).status_code == 200 for path in probes)
