"""The numbers in README and DISCUSSION cannot drift from the committed report: their results blocks
must be exactly what `hybrid-scorer ablate --docs` renders from reports/ablation.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_scorer.report import MARKERS, Results, intervals_section, render_summary

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("doc", ["README.md", "DISCUSSION.md"])
def test_results_block_is_rendered_from_the_committed_report(doc: str) -> None:
    text = (ROOT / doc).read_text()
    start, end = text.index(MARKERS[0]) + len(MARKERS[0]), text.index(MARKERS[1])
    results = Results.model_validate_json((ROOT / "reports" / "ablation.json").read_text())
    assert text[start:end].strip() == render_summary(results).strip(), (
        f"{doc}'s results block differs from reports/ablation.json: rerun"
        " `hybrid-scorer ablate --llm embedded --docs README.md DISCUSSION.md` (make run) instead of editing it"
    )


def test_the_ablation_reports_intervals_section_is_the_committed_comparison() -> None:
    """reports/ablation.md's Intervals section is scripts/intervals.py's reports/intervals.md, not a copy
    that can drift (scripts/intervals.py and `hybrid-scorer ablate` both render it from that file)."""
    assert intervals_section(ROOT / "reports") in (ROOT / "reports" / "ablation.md").read_text()


@pytest.mark.parametrize("doc", ["README.md", "DISCUSSION.md"])
def test_the_injection_block_is_rendered_from_the_committed_measurements(doc: str) -> None:
    from bench.injection import DEFENDED, UNDEFENDED, comparison
    from bench.injection import MARKERS as INJECTION

    text = (ROOT / doc).read_text()
    start, end = text.index(INJECTION[0]) + len(INJECTION[0]), text.index(INJECTION[1])
    expected = comparison(ROOT / DEFENDED, ROOT / UNDEFENDED).replace(str(ROOT) + "/", "")
    assert text[start:end].strip() == expected.strip(), f"rerun `python bench/injection.py --docs {doc}`"


def test_the_module_map_and_command_reference_are_what_the_code_says() -> None:
    """docs/modules.md and docs/commands.md are rendered from the docstrings and the CLI's parser."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "reference.py"), "--check"], capture_output=True, text=True
    )
    assert run.returncode == 0, f"{run.stdout}{run.stderr}: run `python scripts/reference.py`"


def test_the_served_heads_round_counts_are_what_the_committed_measurement_chose() -> None:
    """specs.HEAD_ROUNDS is scripts/heads.py's choice (reports/heads.json), as INTERVAL_SCHEME is intervals.py's."""
    from hybrid_scorer.specs import HEAD_ROUNDS

    measured = json.loads((ROOT / "reports" / "heads.json").read_text())["results"]
    chosen = {r["config"]: (None if r["chosen"] == r["point_rounds"] else r["chosen"]) for r in measured}
    assert chosen == HEAD_ROUNDS


def test_the_forward_in_time_table_is_the_committed_report() -> None:
    table = [line for line in (ROOT / "reports" / "temporal.md").read_text().splitlines() if line.startswith("|")]
    text = (ROOT / "DISCUSSION.md").read_text()
    block = text.split("<!-- temporal:start", 1)[1].split("<!-- temporal:end -->", 1)[0].split("\n", 1)[1]
    assert block.strip().splitlines() == table
