"""The ablation report: reports/ablation.md plus PNG plots (matplotlib, no display needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hybrid_scorer.evaluation import METRICS, CVResult, Interval
from hybrid_scorer.features.meta import normalize_flair
from hybrid_scorer.model import HybridScorer
from hybrid_scorer.specs import Config


@dataclass
class Row:
    """One configuration's line in the report."""

    result: CVResult
    intervals: dict[str, Interval]
    delta: dict[str, Interval]
    llm_tokens_per_1k: float
    llm_seconds_per_1k: float
    llm_usd_per_1k: float
    predict_ms: float


def render_fold_table(results: list[CVResult]) -> str:
    """Mean ± std over folds for each config, as a markdown table."""
    lines = ["| configuration | Spearman | RMSE log1p | MAE log1p | R2 |", "|---|---|---|---|---|"]
    for r in results:
        cells = " | ".join(f"{r.mean(m):.3f} ± {r.std(m):.3f}" for m in METRICS)
        lines.append(f"| {r.name} | {cells} |")
    return "\n".join(lines)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(interval: Interval, signed: bool = False) -> str:
    point, low, high = interval
    spec = "+.3f" if signed else ".3f"
    return f"{point:{spec}} [{low:{spec}}, {high:{spec}}]"


def _table(rows: list[Row]) -> str:
    head = (
        "| configuration | Spearman [95% CI] | Δ Spearman vs content [95% CI] | RMSE log1p [95% CI] |"
        " Δ RMSE vs content | MAE log1p | R2 | folds: Spearman mean ± std |"
        " LLM tokens / 1k posts | LLM s / 1k posts | $ / 1k posts | predict ms / post |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        ms = "" if np.isnan(r.predict_ms) else f"{r.predict_ms:.2f}"
        lines.append(
            f"| {r.result.name} | {_fmt(r.intervals['spearman'])} | {_fmt(r.delta['spearman'], True)} |"
            f" {_fmt(r.intervals['rmse'])} | {_fmt(r.delta['rmse'], True)} | {_fmt(r.intervals['mae'])} |"
            f" {_fmt(r.intervals['r2'])} | {r.result.mean('spearman'):.3f} ± {r.result.std('spearman'):.3f} |"
            f" {r.llm_tokens_per_1k:,.0f} | {r.llm_seconds_per_1k:.0f} | {r.llm_usd_per_1k:.4f} | {ms} |"
        )
    return "\n".join(lines)


def _residual_table(residuals: pd.DataFrame) -> str:
    lines = ["| flair | posts | median residual | mean residual |", "|---|---|---|---|"]
    lines += [f"| {f} | {int(r['count'])} | {r['median']:+.2f} | {r['mean']:+.2f} |" for f, r in residuals.iterrows()]
    return "\n".join(lines)


def _plot_ablation(rows: list[Row], path: Path) -> None:
    names = [r.result.name for r in rows]
    points = np.array([r.intervals["spearman"] for r in rows])
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    y = np.arange(len(rows))
    ax.errorbar(points[:, 0], y, xerr=[points[:, 0] - points[:, 1], points[:, 2] - points[:, 0]], fmt="o", capsize=3)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("Spearman rho of out-of-fold predictions (95% bootstrap CI)")
    ax.set_title("Ablation on grouped 5-fold CV")
    _save(fig, path)


def _plot_pred_vs_actual(y_log: np.ndarray, oof_log: np.ndarray, name: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(y_log, oof_log, s=4, alpha=0.35)
    lim = [0, max(y_log.max(), oof_log.max()) + 0.5]
    ax.plot(lim, lim, color="grey", lw=0.8)
    ax.set_xlabel("actual log1p(score)")
    ax.set_ylabel("predicted log1p(score), out of fold")
    ax.set_title(f"Predicted vs actual: {name}", fontsize=9)
    _save(fig, path)


def _plot_importance(importance: pd.DataFrame, path: Path) -> None:
    by_group = importance.groupby("group")["gain"].sum().sort_values()
    top = importance.head(20).iloc[::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 5.5))
    left.barh(by_group.index, by_group.to_numpy() / by_group.sum())
    left.set_xlabel("share of total gain")
    left.set_title("Gain by feature group")
    right.barh(top["feature"], top["gain"])
    right.set_xlabel("gain")
    right.set_title("Top 20 features")
    right.tick_params(axis="y", labelsize=7)
    _save(fig, path)


def _plot_residuals_by_flair(posts: pd.DataFrame, residual: np.ndarray, path: Path) -> pd.DataFrame:
    frame = pd.DataFrame({"flair": posts["flair"].map(normalize_flair).to_numpy(), "residual": residual})
    top = frame["flair"].value_counts().head(14).index
    frame = frame[frame["flair"].isin(top)]
    order = frame.groupby("flair")["residual"].median().sort_values().index
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.boxplot([frame.loc[frame["flair"] == f, "residual"] for f in order], orientation="horizontal", showfliers=False)
    ax.set_yticks(range(1, len(order) + 1), order)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("residual: predicted - actual log1p(score)")
    ax.set_title("Out-of-fold residuals by flair (14 most common)")
    _save(fig, path)
    return frame.groupby("flair")["residual"].agg(["count", "median", "mean"]).loc[order]


def write_report(
    out_dir: Path,
    rows: list[Row],
    posts: pd.DataFrame,
    final: Config,
    final_model: HybridScorer,
    header: dict[str, str],
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    y_log = np.log1p(posts["score"].to_numpy(np.float64))
    final_row = next(r for r in rows if r.result.name == final.name)
    _plot_ablation(rows, out_dir / "ablation.png")
    _plot_pred_vs_actual(y_log, final_row.result.oof_log, final.name, out_dir / "pred_vs_actual.png")
    importance = final_model.gain_importance()
    _plot_importance(importance, out_dir / "importance.png")
    residuals = _plot_residuals_by_flair(posts, final_row.result.oof_log - y_log, out_dir / "residuals_by_flair.png")
    share = importance.groupby("group")["gain"].sum()
    share = (share / share.sum()).sort_values(ascending=False)
    text = "\n".join(
        [
            "# Ablation report",
            "",
            "Generated by `hybrid-scorer ablate`; same data, seed and code give the same numbers.",
            "",
            *(f"- **{k}**: {v}" for k, v in header.items()),
            "",
            "## Results",
            "",
            "Point estimates are on all out-of-fold predictions; intervals are 95% bootstrap percentiles over posts."
            " Δ columns are paired differences against the content model on the same resampled posts (for RMSE,"
            " negative is better). LLM cost is what producing the features took (cache provenance), per 1,000"
            " posts. Predict ms is the model's own median time for one post with the LLM columns already at hand"
            " (a timing: it varies a little between runs, unlike every other number here).",
            "",
            _table(rows),
            "",
            "![ablation](ablation.png)",
            "",
            f"## The final model: {final.name}",
            "",
            "Gain share by feature group: " + ", ".join(f"{g} {s:.1%}" for g, s in share.items()) + ".",
            "",
            "![importance](importance.png)",
            "",
            "![predicted vs actual](pred_vs_actual.png)",
            "",
            "Residuals by flair (predicted - actual, log1p scale):",
            "",
            _residual_table(residuals),
            "",
            "![residuals by flair](residuals_by_flair.png)",
            "",
        ]
    )
    path = out_dir / "ablation.md"
    path.write_text(text)
    return path
