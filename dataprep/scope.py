"""Which rows a node may touch after `split`: routing the others around it, and the DAG rule that keeps
evaluation rows untouched unless a node says otherwise.

Order matters for honesty: validation and test rows must reach the trainer as `split` wrote them, so that
what is measured on them does not depend on augmentation or on filters fitted to the training rows. A node
downstream of a split-assigning stage therefore declares its scope (`only_split`, `only_augmented`, or
knowingly `all_splits: true`); the DAG refuses one that does not, before any data moves.
"""
from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.errors import ConfigError, SchemaError
from dataprep.registry import SplitScoped

EVALUATION_SPLITS = ("validation", "test")


def row_filter(params) -> Callable[[pa.Table], pa.Array] | None:
    """The mask of rows a scoped stage acts on, or None when it acts on every row. `only_split` and
    `only_augmented` together mean both: generated rows of that split."""
    if not isinstance(params, SplitScoped):
        return None
    masks = []
    if params.only_split:
        masks.append(lambda batch: _in_split(batch, params.only_split))
    if params.only_augmented:
        masks.append(augmented_outside_evaluation)
    if not masks:
        return None
    return lambda batch: _all(batch, masks)


def _all(batch: pa.Table, masks: list) -> pa.Array:
    mask = masks[0](batch)
    for more in masks[1:]:
        mask = pc.and_(mask, more(batch))
    return mask


def _in_split(batch: pa.Table, split: str) -> pa.Array:
    if "split" not in batch.column_names:
        raise SchemaError(f"only_split={split!r} needs a 'split' column; run `split` first")
    return pc.fill_null(pc.equal(batch.column("split"), split), False)


def augmented_outside_evaluation(batch: pa.Table) -> pa.Array:
    """Generated rows (non-null `aug`, e.g. bt:en) that are not in a validation or test split: a pipeline
    that augments before `split` puts paraphrases in evaluation splits, and those stay untouched too."""
    if "aug" not in batch.column_names:
        return pa.array([False] * batch.num_rows, pa.bool_())
    generated = pc.is_valid(batch.column("aug"))
    if "split" not in batch.column_names:
        return generated
    evaluation = pc.fill_null(pc.is_in(batch.column("split"), pa.array(EVALUATION_SPLITS)), False)
    return pc.and_(generated, pc.invert(evaluation))


def check_evaluation_rows_untouched(nodes: dict) -> None:
    """Every row node downstream of a split-assigning stage must declare which rows it touches."""
    after_split: set[str] = set()
    for name, node in nodes.items():  # topological order: inputs first
        upstream = [i for i in node.inputs if i in after_split or nodes[i].stage.assigns_splits]
        if not upstream:
            continue
        after_split.add(name)
        if node.stage.kind == "build":
            _require_build_scope(name, node, upstream[0])
        else:
            _require_scope(name, node, upstream[0])


def _require_build_scope(name: str, node, upstream: str) -> None:
    """A build changes no row, but a model that learned from validation or test text (a tokenizer, a base
    model) would make what is measured on them look better than it is: it says which rows it learns from."""
    if node.stage.reads_splits:
        return
    declares = getattr(node.params, "declares_scope", None)
    if declares is None:
        raise ConfigError(f"{node.stage.name} runs after `split` (via {upstream!r}) and would learn from "
                          "validation and test rows, and it cannot be limited to some rows: feed it rows "
                          "before `split`", name, "input")
    if not declares():
        raise ConfigError(f"{node.stage.name} runs after `split` (via {upstream!r}) and would learn from "
                          "validation and test rows: set only_split: train (or all_splits: true to mean it)",
                          name, "with")


def learned_rows(params) -> Callable[[pa.Table], pa.Table]:
    """What a build learns from each input batch: with `only_split`, the rows of that split, and every row
    of a batch that has no `split` column (an input that was never split, such as a reference corpus)."""
    inside = row_filter(params)
    if inside is None:
        return lambda batch: batch
    return lambda batch: batch.filter(inside(batch)) if "split" in batch.column_names else batch


def _require_scope(name: str, node, upstream: str) -> None:
    declares = getattr(node.params, "declares_scope", None)
    if declares is None:
        raise ConfigError(f"{node.stage.name} runs after `split` (via {upstream!r}) and would touch validation "
                          "and test rows, and it cannot be limited to some rows: run it before `split`", name,
                          "uses")
    if not declares():
        raise ConfigError(f"{node.stage.name} runs after `split` (via {upstream!r}) and would touch validation "
                          "and test rows: set only_split (e.g. train), only_augmented: true, or all_splits: "
                          "true to mean it", name, "with")
