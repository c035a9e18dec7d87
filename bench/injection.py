"""Prompt injection against the served hybrid and its real LLM (hybrid_scorer/injection.py: attempts,
controls, moves). Needs a trained hybrid (`make run`). The LLM's answers go to a temporary cache, so every
attempt and control is read by the LLM itself.

    .venv/bin/python bench/injection.py --posts 30                 # reports/bench/injection.{md,json}
    .venv/bin/python bench/injection.py --posts 30 --undefended    # .../injection_undefended.{md,json}

--undefended measures the same code with the defence (llm/sanitize.py's strip_instructions, applied to
what the LLM reads) replaced by the identity: what an attack does without it."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import prepare_posts
from hybrid_scorer.injection import ATTEMPTS, measure, render, summarize
from hybrid_scorer.llm import prompts
from hybrid_scorer.llm.sanitize import strip_instructions
from hybrid_scorer.serving.predictor import Predictor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="CSV of posts (default: the settings' data path)")
    parser.add_argument("--model-dir", type=Path, default=Path("models/current"))
    parser.add_argument("--posts", type=int, default=30, help="real posts to attack (a fixed random sample)")
    parser.add_argument("--out", type=Path, default=None, help="writes OUT.md and OUT.json")
    parser.add_argument("--undefended", action="store_true", help="the LLM reads posts without the defence")
    args = parser.parse_args()
    out = args.out or Path("reports/bench/injection_undefended" if args.undefended else "reports/bench/injection")
    if args.undefended:
        prompts.strip_instructions = lambda text: text  # type: ignore[assignment]
    settings = get_settings()
    posts, _ = prepare_posts(args.data or settings.data_path)
    touched = sum(
        strip_instructions(t) != t or strip_instructions(b) != b
        for t, b in zip(posts["title_clean"], posts["body_clean"], strict=True)
    )
    short = posts[posts["title"].str.len() < 240]  # room for the title attempt within the 300-character limit
    sample = short.sample(args.posts, random_state=0)
    chosen = [{"post_id": str(r.post_id), "title": r.title, "body": r.body} for r in sample.itertuples()]
    with tempfile.TemporaryDirectory() as cache:
        fresh = settings.model_copy(update={"cache_dir": Path(cache), "predict_llm_budget_ms": 120_000})
        predictor = Predictor(args.model_dir, settings=fresh, log_path=Path(cache) / "log.jsonl").load().warm()
        if predictor.hybrid is None:
            print("error: no hybrid model in", args.model_dir, "(train one: make run)", file=sys.stderr)
            return 1
        moves = measure(predictor, tqdm(chosen, desc="posts", unit="post"))
        predictor.close()
    summaries = summarize(moves)
    command = f"python bench/injection.py --posts {args.posts}" + (" --undefended" if args.undefended else "")
    out.parent.mkdir(parents=True, exist_ok=True)
    note = (
        f"The defence changes what the LLM reads of {touched} of the {len(posts):,} real posts (their cache keys stay)."
    )
    out.with_suffix(".md").write_text(render(summaries, command) + "\n" + note + "\n")
    payload = {"summaries": [s.model_dump() for s in summaries], "moves": [m.model_dump() for m in moves]}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1))
    print(render(summaries, command), note, sep="\n")
    print(f"{len(ATTEMPTS)} attempts x {len(chosen)} posts; written to {out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
