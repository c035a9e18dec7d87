"""A LightGBM model averaged over the levels of a one-hot group, as one model evaluated once.

Scoring a post of unknown flair means averaging the model over K flair rows (one per trained flair level,
weighted by its share). A tree that never splits on a flair column gives the same value for all K rows;
a tree that does takes, for each level, one fixed direction at each of its flair splits. So the average
is exactly a forest: every flair-free tree as it is, and for each flair tree one copy per distinct
combination of directions, its splits on flair columns forced that way and its leaves multiplied by the
total weight of the levels that take it. One row through that forest costs what one row through the
model costs (measured: `python bench/predict.py`), instead of K rows, and gives the K-row average up to
floating-point rounding (`tests/test_row_path.py`, `bench/parity.py`).

The forest is written in LightGBM's own text format and loaded by LightGBM, so the trees are evaluated by
the same code as the model's; nothing is written to disk."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from hybrid_scorer.forests import join_model, render_fields, split_model, tree_fields

_ZERO = 1e-35  # LightGBM's kZeroThreshold
_LEFT, _RIGHT = 1e300, -1e300  # thresholds that send a flair value of 0 left (0 <= 1e300) or right


def _goes_left(value: float, threshold: float, decision_type: int) -> bool:
    """LightGBM's NumericalDecision (include/LightGBM/tree.h) for a non-missing value."""
    missing_type = (decision_type >> 2) & 3  # 0 none, 1 zero, 2 NaN
    if missing_type == 1 and abs(value) <= _ZERO:
        return bool(decision_type & 2)  # the default direction
    return value <= threshold


def _variants(fields: dict[str, str], columns: Mapping[int, int], weights: Sequence[float]) -> list[dict[str, str]]:
    """The copies of one tree that replace it in the averaged forest (itself when it has no flair split).
    `columns` maps each one-hot column to its level's position in `weights` (-1: the column of no level)."""
    if "split_feature" not in fields:
        return [fields]
    features = [int(f) for f in fields["split_feature"].split()]
    thresholds = [float(t) for t in fields["threshold"].split()]
    decisions = [int(d) for d in fields["decision_type"].split()]
    flair_nodes = [i for i, f in enumerate(features) if f in columns]
    if not flair_nodes:
        return [fields]
    by_directions: dict[tuple[bool, ...], float] = {}
    for level, weight in enumerate(weights):
        directions = tuple(
            _goes_left(float(columns[features[i]] == level), thresholds[i], decisions[i]) for i in flair_nodes
        )
        by_directions[directions] = by_directions.get(directions, 0.0) + weight
    out = []
    for directions, weight in by_directions.items():
        forced_thresholds, forced_decisions = list(fields["threshold"].split()), list(fields["decision_type"].split())
        for node, left in zip(flair_nodes, directions, strict=True):
            forced_thresholds[node], forced_decisions[node] = repr(_LEFT if left else _RIGHT), "0"
        leaves = " ".join(repr(float(v) * weight) for v in fields["leaf_value"].split())
        out.append(
            {
                **fields,
                "threshold": " ".join(forced_thresholds),
                "decision_type": " ".join(forced_decisions),
                "leaf_value": leaves,
            }
        )
    return out


def average_over_one_hot(
    model_text: str, group_columns: Iterable[int], level_columns: Sequence[int], weights: Iterable[float]
) -> str:
    """The model text of a forest whose prediction for any row is sum_k weights[k] * model(row with the
    one-hot columns `group_columns` all 0 but level k's column `level_columns[k]`, 1) / sum(weights)."""
    weights = [float(w) for w in weights]
    total = math.fsum(weights)
    normalized = [w / total for w in weights]
    head, blocks, tail = split_model(model_text)
    columns = {column: -1 for column in group_columns} | {column: k for k, column in enumerate(level_columns)}
    trees = [variant for block in blocks for variant in _variants(tree_fields(block), columns, normalized)]
    return join_model(head, [render_fields(tree) for tree in trees], tail)
