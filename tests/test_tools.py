"""The scripts and benchmarks the docs tell people to run must exist and start: every runnable file in
scripts/ and bench/ answers `--help`, and every `scripts/NAME.py` or `bench/NAME.py` that README or
DISCUSSION names is a file in the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "DISCUSSION.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md"))))
MAIN_BLOCK = re.compile(r"""^if __name__ == ["']__main__["']:""", re.MULTILINE)
SCRIPT_PATH = re.compile(r"\b(?:scripts|bench)/[A-Za-z0-9_]+\.py\b")


def runnable_tools() -> list[Path]:
    """scripts/*.py and bench/*.py that run as programs (a `__main__` block); bench/__init__.py and helper
    modules are not tools."""
    files = sorted([*ROOT.glob("scripts/*.py"), *ROOT.glob("bench/*.py")])
    return [f for f in files if f.name != "__init__.py" and MAIN_BLOCK.search(f.read_text())]


TOOLS = runnable_tools()


def test_there_are_tools_to_check() -> None:
    assert TOOLS, "no runnable file found in scripts/ or bench/"


@pytest.mark.parametrize("tool", TOOLS, ids=[f"{t.parent.name}/{t.name}" for t in TOOLS])
def test_tool_answers_help(tool: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(tool), "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{tool.relative_to(ROOT)} --help exited {done.returncode}:\n{output[-2000:]}"
    assert "usage" in output.lower(), f"{tool.relative_to(ROOT)} --help printed no usage:\n{output[-2000:]}"


def documented_tool_paths() -> list[tuple[str, str]]:
    """(document, path) for every scripts/NAME.py or bench/NAME.py the docs name, each once per document."""
    found: dict[tuple[str, str], None] = {}
    for doc in DOCS:
        for match in SCRIPT_PATH.finditer((ROOT / doc).read_text()):
            found[(doc, match.group(0))] = None
    return list(found)


DOCUMENTED = documented_tool_paths()


def test_the_docs_name_tools() -> None:
    assert DOCUMENTED, "README.md and DISCUSSION.md name no scripts/*.py or bench/*.py"


@pytest.mark.parametrize(("doc", "path"), DOCUMENTED, ids=[f"{doc}:{path}" for doc, path in DOCUMENTED])
def test_documented_tool_exists(doc: str, path: str) -> None:
    assert (ROOT / path).is_file(), f"{doc} names {path}, which is not in the repository"
