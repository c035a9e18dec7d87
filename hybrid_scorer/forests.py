"""LightGBM models as text (its own model format): split into header, trees and tail, render back, and
stack several models on the same features into one.

Stacked, K models become one model of K outputs, shaped as LightGBM shapes a K-class model (tree i*K + k
belongs to output k; a model with fewer trees is padded with one-leaf trees of value 0): one single-row
predict call with `raw_score=True` gives every model's raw score, each summed over its own trees in its
own order, so exactly what K calls give (`tests/test_row_path.py`). The served model and its heads are
one call instead of six (`python bench/predict.py`). A padding tree costs about as much to walk as a real
one, so a model longer than the others goes in as several outputs of their length (`in_chunks`), whose
raw scores add up to its own. Nothing is written to disk."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_TREE = re.compile(r"^Tree=\d+\n", flags=re.MULTILINE)
_ZERO_TREE = (
    "num_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\ndecision_type=\nleft_child=\n"
    "right_child=\nleaf_value=0\nleaf_weight=\nleaf_count=0\ninternal_value=\ninternal_weight=\n"
    "internal_count=\nis_linear=0\nshrinkage=1\n"
)


def split_model(model_text: str) -> tuple[str, list[str], str]:
    """(header, the tree blocks without their `Tree=i` line, the tail from `end of trees` on)."""
    head, _, rest = model_text.partition("Tree=0\n")
    trees_text, marker, tail = ("Tree=0\n" + rest).partition("end of trees")
    return head, [b for b in _TREE.split(trees_text) if b.strip()], marker + tail


def tree_fields(block: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in block.strip().splitlines() if "=" in line)


def render_fields(fields: Mapping[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in fields.items())


def join_model(head: str, trees: Sequence[str], tail: str) -> str:
    """A model text from its parts: trees numbered in order, the header's tree sizes rewritten."""
    rendered = [f"Tree={i}\n{tree.strip(chr(10))}\n\n\n" for i, tree in enumerate(trees)]
    sizes = "tree_sizes=" + " ".join(str(len(r)) for r in rendered)
    return re.sub(r"^tree_sizes=.*$", sizes, head, flags=re.MULTILINE) + "".join(rendered) + tail


def in_chunks(model_text: str, rounds: int) -> list[str]:
    """The model as consecutive models of at most `rounds` trees each (the first holds the initial score,
    which LightGBM folds into the first tree): their raw scores add up to the model's own, up to the order
    of the additions (a few units in the last place)."""
    head, trees, tail = split_model(model_text)
    return [join_model(head, trees[i : i + rounds], tail) for i in range(0, len(trees), rounds)]


def stack_models(model_texts: Sequence[str]) -> str:
    """One model whose raw output k is model k's raw score (models on the same features)."""
    parts = [split_model(text) for text in model_texts]
    k, rounds = len(parts), max(len(trees) for _, trees, _ in parts)
    trees = [t[i] if i < len(t) else _ZERO_TREE for i in range(rounds) for _, t, _ in parts]
    head = parts[0][0]
    for key, value in (("num_class", k), ("num_tree_per_iteration", k), ("objective", f"multiclass num_class:{k}")):
        head = re.sub(rf"^{key}=.*$", f"{key}={value}", head, flags=re.MULTILINE)
    return join_model(head, trees, "end of trees\n\nparameters:\nend of parameters\n\npandas_categorical:null\n")
