"""The ablation report's figures (matplotlib without a display). Only report.write_report imports this,
when it writes a report: matplotlib is the `evaluation` extra's, and nothing the service runs needs it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def ablation(names: list[str], spearman: np.ndarray, path: Path) -> None:
    """Each configuration's Spearman with its 95% interval; `spearman` rows are (point, low, high)."""
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    y = np.arange(len(names))
    error = [spearman[:, 0] - spearman[:, 1], spearman[:, 2] - spearman[:, 0]]
    ax.errorbar(spearman[:, 0], y, xerr=error, fmt="o", capsize=3)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("Spearman rho of out-of-fold predictions (95% bootstrap CI)")
    ax.set_title("Ablation on grouped 5-fold CV")
    _save(fig, path)


def pred_vs_actual(y_log: np.ndarray, oof_log: np.ndarray, name: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(y_log, oof_log, s=4, alpha=0.35)
    lim = [0, max(y_log.max(), oof_log.max()) + 0.5]
    ax.plot(lim, lim, color="grey", lw=0.8)
    ax.set_xlabel("actual log1p(score)")
    ax.set_ylabel("predicted log1p(score), out of fold")
    ax.set_title(f"Predicted vs actual: {name}", fontsize=9)
    _save(fig, path)


def importance(importance: pd.DataFrame, path: Path) -> None:
    """Gain by feature group and the 20 features of most gain (`importance` sorted by gain, descending)."""
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


def residuals_by_flair(residuals: pd.DataFrame, path: Path) -> None:
    """Box plots of `residuals` (columns flair, residual), flairs in the order their rows come."""
    order = residuals["flair"].unique()
    fig, ax = plt.subplots(figsize=(8, 5))
    groups = [residuals.loc[residuals["flair"] == f, "residual"] for f in order]
    ax.boxplot(groups, orientation="horizontal", showfliers=False)
    ax.set_yticks(range(1, len(order) + 1), order)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("residual: predicted - actual log1p(score)")
    ax.set_title("Out-of-fold residuals by flair (14 most common)")
    _save(fig, path)
