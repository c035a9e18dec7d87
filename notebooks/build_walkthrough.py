"""Writes notebooks/walkthrough.ipynb from the cells below (the notebook's source in reviewable form),
then executes it with nbclient so it is committed with its outputs:

    .venv/bin/python notebooks/build_walkthrough.py            # after `make run` (models/current)
    WALKTHROUGH_MODELS=DIR .venv/bin/python notebooks/build_walkthrough.py --check   # CI: execute, keep nothing

--check executes into a temporary copy and fails on the first cell that raises."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "walkthrough.ipynb"

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# hybrid-scorer: a guided tour

Predicting the score of an r/askscience post from its title and body (and optionally flair and time), with
a small LLM's reading of the post as extra features. This notebook walks through the data's traps, the
features, the honest numbers and one prediction, locally and over HTTP. README is the reference; every
number here is either computed in a cell or read from a file under `reports/` that a named command wrote.""",
    ),
    (
        "code",
        """import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
from IPython.display import Image, Markdown, display

ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
DATA = Path(os.environ.get("ASKSCIENCE_CSV", ROOT / "data" / "askscience_data.csv"))
MODELS = Path(os.environ.get("WALKTHROUGH_MODELS", ROOT / "models" / "current"))
print(f"data: {DATA}\\nmodels: {MODELS}")""",
    ),
    (
        "md",
        """## 1. The data and its traps

`prepare_posts` validates, cleans and deduplicates (re-scraped snapshots of one post share its URL: the
first one in file order is kept, so a post can never sit in both training and test folds).""",
    ),
    (
        "code",
        """from hybrid_scorer.data import prepare_posts

posts, report = prepare_posts(DATA)
raw = pd.read_csv(DATA)
print(f"{len(raw):,} rows read, {len(posts):,} posts after deduplication and cleaning")
index_rho = raw["Unnamed: 0"].corr(raw["score"], method="spearman")
print(f"Spearman of the `Unnamed: 0` row index with score: {index_rho:.2f}")
print("median score of posts without a flair:", posts.loc[posts["flair"].fillna("") == "", "score"].median(),
      "| with one:", posts.loc[posts["flair"].fillna("") != "", "score"].median())""",
    ),
    (
        "md",
        """What each trap would do to the numbers (`python scripts/traps.py` wrote `reports/traps.md`): none of
these columns reaches a model here.""",
    ),
    ("code", """display(Markdown((ROOT / "reports" / "traps.md").read_text()))"""),
    (
        "md",
        """## 2. Features

Each feature group is one file under `hybrid_scorer/features/` and declares what it needs from the LLM
(nothing, the assessment, or the embedding), whether it learns from labels, and its width.""",
    ),
    (
        "code",
        """from hybrid_scorer.features.matrix import GROUPS

rows = []
for name, group in GROUPS.items():
    needs = ", ".join(sorted(str(n) for n in group.needs)) or "-"
    rows.append({"group": name, "needs": needs, "learns from labels": group.supervised})
pd.DataFrame(rows)""",
    ),
    (
        "md",
        """## 3. What the numbers say

The ablation (`hybrid-scorer ablate`, grouped 5-fold CV, bootstrap intervals, paired deltas) wrote
`reports/ablation.md`; its table is shown as generated.""",
    ),
    (
        "code",
        """ablation = (ROOT / "reports" / "ablation.md").read_text()
display(Markdown(ablation.split("\\n## ")[0]))
display(Image(str(ROOT / "reports" / "ablation.png"), width=640))""",
    ),
    (
        "md",
        """Intervals that adapt to the post (`python scripts/intervals.py` wrote `reports/intervals.md`): width
against predicted score, coloured by whether the true score was covered.""",
    ),
    ("code", """display(Image(str(ROOT / "reports" / "intervals.png"), width=640))"""),
    (
        "md",
        """## 4. One prediction, explained

`Predictor` loads the served models (the hybrid when an LLM is configured, the content model otherwise),
and `predict()` returns the score, its 80%/90% intervals, and each feature group's share of the log score.""",
    ),
    (
        "code",
        """from hybrid_scorer.serving.predictor import Predictor

predictor = Predictor(MODELS).load().warm()
post = {"title": "Why does ice float when most solids sink in their own liquid?",
        "body": "How does the crystal structure make it less dense?"}
prediction = predictor.predict(post, explain=True)
print(f"score {prediction.score:.0f}, 80% interval {prediction.interval_80}, 90% interval {prediction.interval_90}")
print("model:", prediction.model_version, "| fallback:", prediction.fallback, prediction.fallback_reason or "")
pd.Series(prediction.contributions, name="share of log1p(score)").sort_values()""",
    ),
    (
        "md",
        """## 5. The same post over HTTP

`hybrid-scorer serve` is the service (a page at `/`, the API at `/v1/predict`, Prometheus metrics at
`/metrics`). Started here on a free port, asked once, stopped.""",
    ),
    (
        "code",
        """with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
command = [sys.executable, "-m", "hybrid_scorer.cli", "serve", "--model", str(MODELS), "--port", str(port)]
serve = subprocess.Popen(command, stderr=subprocess.DEVNULL)
url = f"http://127.0.0.1:{port}"
try:
    for _ in range(240):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    answer = httpx.post(url + "/v1/predict", json=post).json()
finally:
    serve.terminate()
    serve.wait(30)
shown = ("score", "interval_80", "interval_90", "p_top", "fallback", "latency_ms")
print(json.dumps({k: answer[k] for k in shown}, indent=1))
assert abs(answer["score"] - prediction.score) < 1e-9 * max(1.0, prediction.score), "the service and predict() agree"
""",
    ),
    (
        "md",
        """## Where to go next

- `reports/ablation.md`: what each feature group, the LLM included, buys, with token and latency cost.
- `DISCUSSION.md`: what the numbers mean, how to run it in production, what the LLM did and did not buy.
- README: every command, the service's API, keys and limits, the lock file.""",
    ),
]


def build() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    make = {"md": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    notebook.cells = [make[kind](source) for kind, source in CELLS]
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="execute without writing the notebook (CI)")
    args = parser.parse_args()
    notebook = build()
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            nbformat.write(notebook, Path(tmp) / NOTEBOOK.name)
        print(f"executed {len(notebook.cells)} cells without an error")
    else:
        nbformat.write(notebook, NOTEBOOK)
        print(f"wrote {NOTEBOOK} with its outputs")


if __name__ == "__main__":
    main()
