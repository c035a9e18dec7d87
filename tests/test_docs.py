"""The numbers in README and DISCUSSION cannot drift from the committed report: their results blocks
must be exactly what `hybrid-scorer ablate --docs` renders from reports/ablation.json."""

from __future__ import annotations

import json
import re
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


@pytest.mark.parametrize("doc", ["docs/production.md", "DISCUSSION.md"])
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


@pytest.mark.parametrize(
    ("block", "report"), [("temporal", "temporal.md"), ("traps", "traps.md"), ("candidates", "candidates.md")]
)
def test_the_rendered_tables_are_the_committed_reports(block: str, report: str) -> None:
    """DISCUSSION's forward-in-time, traps and candidates tables are their reports' tables, line for line."""
    table = [line for line in (ROOT / "reports" / report).read_text().splitlines() if line.startswith("|")]
    text = (ROOT / "DISCUSSION.md").read_text()
    rendered = text.split(f"<!-- {block}:start", 1)[1].split(f"<!-- {block}:end -->", 1)[0].split("\n", 1)[1]
    assert rendered.strip().splitlines() == table, f"copy reports/{report}'s table into DISCUSSION's {block} block"


DOCS = ["README.md", "DISCUSSION.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]
_CITED = re.compile(r"reports/[\w./-]+\.(?:md|txt|json)")
# decimals, thousands, and whole numbers of milliseconds or megabytes (latency and memory, which benches print)
_FIGURE = re.compile(
    r"(?<![\w.])[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)\.\d+(?![\w.])|(?<![\w.])\d{1,3}(?:,\d{3})+(?![\w.])"
    r"|(?<![\w.,])\d+(?= ?(?:ms|MB)\b)"
)
_GENERATED = re.compile(r"<!-- (\w[\w-]*):start.*?<!-- \1:end -->", re.S)


_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?:e[+-]?\d+)?")


def _value(figure: str) -> tuple[float, int]:
    """A figure's magnitude and its decimals (signs and thousands commas aside)."""
    digits = figure.replace(",", "").lstrip("+-")
    return float(digits), len(digits.split(".")[1]) if "." in digits else 0


def _units(text: str) -> list[str]:
    """Paragraphs outside the generated blocks (those are checked whole, above); a list with the line that
    introduces it (ending in ":") is one paragraph, so "Measured by X:" covers its items."""
    units: list[str] = []
    for unit in (u for u in re.split(r"\n\s*\n", _GENERATED.sub("", text)) if u.strip()):
        if units and units[-1].rstrip().endswith(":") and unit.lstrip().startswith(("- ", "* ", "|")):
            units[-1] += "\n\n" + unit
        else:
            units.append(unit)
    return units


def _cited_figures() -> list[tuple[str, str, list[str]]]:
    found = []
    for doc in DOCS:
        for unit in _units((ROOT / doc).read_text()):
            cited = sorted({c.rstrip(".") for c in _CITED.findall(unit) if (ROOT / c.rstrip(".")).is_file()})
            if cited:
                found.append((doc, unit, cited))
    return found


def test_every_figure_beside_a_cited_report_is_in_that_report() -> None:
    """A paragraph that names a committed output under reports/ quotes only figures that output holds (its
    decimals and thousands, commas and signs aside): a rerun that changes the file fails here until the
    prose follows. Figures with no committed output carry no such citation (and do not belong in the docs)."""
    missing = []
    for doc, unit, cited in _cited_figures():
        held = {float(n.replace(",", "")) for c in cited for n in _NUMBER.findall((ROOT / c).read_text())}
        for figure in _FIGURE.findall(unit):
            value, decimals = _value(figure)  # the prose may round what the file holds, never more
            if not any(round(h, decimals) == value for h in held):
                missing.append(f"{doc}: {figure} not in {', '.join(cited)}: {unit.strip()[:120]!r}")
    assert not missing, "\n".join(missing)
