"""Which rows a node may touch after `split`: routing the others around it, and the DAG rule that keeps
evaluation rows untouched unless a node says otherwise.

Order matters for honesty: validation and test rows must reach the trainer as `split` wrote them, so that
what is measured on them does not depend on augmentation or on filters fitted to the training rows. A node
downstream of a split-assigning stage therefore declares its scope (`only_split`, `only_augmented`, or
knowingly `all_splits: true`); the DAG refuses one that does not, before any data moves.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.errors import ConfigError, SchemaError
from dataprep.io.fields import split_name
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
    """Every row node whose input may hold validation or test rows must declare which rows it touches.

    Splits come from a `split` node or from the data itself: a reader's `split_as` or explicit `split_field`,
    `read_hf`'s DatasetDict (`_source_splits`). The DAG follows, node by node, which splits the rows may carry:
    a branch that holds only one file's training rows (`split_as: train`) may be deduplicated or filtered
    freely, one that holds official validation or test rows may not. Two kinds of node need no scope there:
    the preparation stages (`normalize`, `to_bio2`: each row alone, every split alike, as `dataprep predict`
    prepares new rows for the adapter) while no `split` node is upstream (after one, they could have run
    before it), and `split` itself, which keeps every row's own split and fills only the rows without one."""
    rows: dict[str, _Rows] = {}
    for name, node in nodes.items():  # topological order: inputs first
        carrying = [i for i in node.inputs if rows[i].splits & EVALUATION]
        upstream = _Rows.joined([rows[i] for i in node.inputs])
        rows[name] = _rows_out(name, node, upstream)
        if not carrying or _exempt(node, upstream):
            continue
        where, placement = rows[carrying[0]].describe(carrying[0])
        if node.stage.kind == "build":
            _require_build_scope(name, node, where, placement)
        else:
            _require_scope(name, node, where, placement)


# The stages that prepare rows for the adapter (dataprep.predict.PREPARE, which `dataprep predict` and
# `dataprep eval` apply to new files): official test rows must go through them exactly as training rows did.
PREPARATION_STAGES = ("normalize", "to_bio2")
EVALUATION = frozenset(EVALUATION_SPLITS)
ALL_SPLITS = frozenset(("train", *EVALUATION_SPLITS))


@dataclass(frozen=True)
class _Rows:
    """What the DAG knows of a node's rows before any data moves: the splits they may carry and who gave them:
    `split_node`, the `split` node upstream (if any), else `reader`, the first reader whose data holds them,
    and what in its params says so."""
    splits: frozenset[str] = frozenset()
    split_node: str = ""
    reader: str = ""
    said: str = ""

    @staticmethod
    def joined(inputs: list[_Rows]) -> _Rows:
        """The rows of several inputs together: any split one of them may carry."""
        splits = frozenset().union(*(r.splits for r in inputs))
        split_node = next((r.split_node for r in inputs if r.split_node), "")
        first = next((r for r in inputs if r.reader and r.splits & EVALUATION), _Rows())
        return _Rows(splits, split_node, first.reader, first.said)

    def describe(self, via: str) -> tuple[str, str]:
        """How a message names where these rows got their splits (reached through the input `via`), and where
        a node that cannot be scoped belongs instead."""
        if self.split_node:
            return f"after `split` (via {via!r})", "before `split`"
        elsewhere = "on a branch without validation or test rows (e.g. the train file's alone)"
        if via == self.reader:
            return f"on the official splits of {self.reader!r} ({self.said})", elsewhere
        return f"on the official splits of {self.reader!r} ({self.said}; via {via!r})", elsewhere


def _rows_out(name: str, node, upstream: _Rows) -> _Rows:
    """The rows a node hands on: a reader's own splits, every split after `split`, else its inputs' rows
    (a row stage keeps or drops rows, and a generated row takes its parent's split); a build's are none."""
    if node.stage.kind == "source":
        splits, said = _source_splits(node.params)
        return _Rows(splits, reader=name if splits else "", said=said)
    if node.stage.assigns_splits:
        return _Rows(ALL_SPLITS, name)
    if node.stage.kind == "build":
        return _Rows()  # a model: its consumers name it as a model param, never as an input
    return upstream


def _source_splits(params) -> tuple[frozenset[str], str]:
    """The splits a reader's rows may carry, judged from its params (and a saved dataset's directory), and the
    params that say so: the `split_as` split; every split with an explicit, non-default `split_field` or a
    DatasetDict read whole. A reader left at the default `split_field` whose file turns out to hold that
    field is not seen here: that is known only once it reads."""
    splits, said = set(), []
    if getattr(params, "split_as", None):
        splits.add(split_name(params.split_as))
        said.append(f"split_as: {params.split_as}")
    if _explicit_split_field(params):
        splits |= ALL_SPLITS
        said.append(f"split_field: {params.split_field}")
    if _reads_a_dataset_dict(params):
        splits |= ALL_SPLITS
        said.append("a DatasetDict read whole")
    return frozenset(splits), ", ".join(said)


def _explicit_split_field(params) -> bool:
    """A `split_field` other than its default (and not null): the user says the input holds splits."""
    field = next((f for f in dataclasses.fields(params) if f.name == "split_field"), None)
    return field is not None and params.split_field is not None and params.split_field != field.default


def _reads_a_dataset_dict(params) -> bool:
    """read_hf with `split: all` on a hub name (load_dataset returns a DatasetDict) or on a directory that
    save_to_disk wrote from a DatasetDict (it holds dataset_dict.json)."""
    if getattr(params, "split", None) != "all":
        return False
    if getattr(params, "name", None):
        return True
    path = getattr(params, "path", "") or ""
    return bool(path) and (Path(path) / "dataset_dict.json").is_file()


def _exempt(node, upstream: _Rows) -> bool:
    """Preparation stages and `split` itself, on rows whose splits only the data gave (no `split` upstream)."""
    if upstream.split_node:
        return False
    return node.stage.name in PREPARATION_STAGES or node.stage.assigns_splits


def _require_build_scope(name: str, node, where: str, placement: str) -> None:
    """A build changes no row, but a model that learned from validation or test text (a tokenizer, a base
    model) would make what is measured on them look better than it is: it says which rows it learns from."""
    if node.stage.reads_splits:
        return
    declares = getattr(node.params, "declares_scope", None)
    if declares is None:
        raise ConfigError(f"{node.stage.name} runs {where} and would learn from validation and test rows, and "
                          f"it cannot be limited to some rows: feed it rows {placement}", name, "input")
    if not declares():
        raise ConfigError(f"{node.stage.name} runs {where} and would learn from validation and test rows: set "
                          "only_split: train (or all_splits: true to mean it)", name, "with")


def learned_rows(params) -> Callable[[pa.Table], pa.Table]:
    """What a build learns from each input batch: with `only_split`, the rows of that split, and every row
    of a batch that has no `split` column (an input that was never split, such as a reference corpus)."""
    inside = row_filter(params)
    if inside is None:
        return lambda batch: batch
    return lambda batch: batch.filter(inside(batch)) if "split" in batch.column_names else batch


def _require_scope(name: str, node, where: str, placement: str) -> None:
    declares = getattr(node.params, "declares_scope", None)
    if declares is None:
        raise ConfigError(f"{node.stage.name} runs {where} and would touch validation and test rows, and it "
                          f"cannot be limited to some rows: run it {placement}", name, "uses")
    if not declares():
        raise ConfigError(f"{node.stage.name} runs {where} and would touch validation and test rows: set "
                          "only_split (e.g. train), only_augmented: true, or all_splits: true to mean it", name,
                          "with")

