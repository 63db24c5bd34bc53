"""Stages used only by the tests, registered once (conftest imports this module; pipelines name it in
`imports:`). Each is a few lines and has one job, so a failing test points at the runner, not at a stage."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.outcome import Outcome
from dataprep.registry import param, stage


def _set_text(table: pa.Table, text) -> pa.Table:
    return table.set_column(table.column_names.index("text"), "text", text)


@dataclass(frozen=True)
class UpperParams:
    suffix: str = param("", "appended to every text")


@stage("t_upper", version=1, kind="map", params=UpperParams)
def t_upper(table: pa.Table, p: UpperParams) -> pa.Table:
    """Upper-case the text and append `suffix`. Drops nothing."""
    text = pc.utf8_upper(table.column("text"))
    if p.suffix:
        text = pc.binary_join_element_wise(text, pa.scalar(p.suffix), "")
    return _set_text(table, text)


@dataclass(frozen=True)
class FailParams:
    label: str = param("boom", "the label that makes the stage raise")


@stage("t_fail_on", version=1, kind="map", params=FailParams)
def t_fail_on(table: pa.Table, p: FailParams) -> pa.Table:
    """Pass rows through; raise on the first batch holding a row with `label` (a stage that crashes)."""
    if p.label in table.column("label").to_pylist():
        raise RuntimeError(f"t_fail_on: {p.label}")
    return table


@dataclass(frozen=True)
class MinLenParams:
    min_len: int = param(3, "shortest text kept")


@stage("t_min_len", version=1, kind="filter", params=MinLenParams)
def t_min_len(table: pa.Table, p: MinLenParams):
    """Keep texts of at least `min_len` characters. Drop reasons: `too_short:<min_len>`."""
    lengths = pc.utf8_length(pc.fill_null(table.column("text"), ""))
    return pc.greater_equal(lengths, p.min_len), f"too_short:{p.min_len}"


@stage("t_tag", version=1, kind="map")
def t_tag(table: pa.Table, p) -> pa.Table:
    """Add an extra column `tag` (label + '!'). Drops nothing."""
    return table.append_column("tag", pc.binary_join_element_wise(table.column("label"), pa.scalar("!"), ""))


@stage("t_identity", version=1, kind="map")
def t_identity(table: pa.Table, p) -> pa.Table:
    """Return the batch unchanged."""
    return table


@stage("t_lose_row", version=1, kind="map")
def t_lose_row(table: pa.Table, p) -> pa.Table:
    """A broken stage: silently loses the first row of every batch."""
    return table.slice(1)


@stage("t_drop_label_column", version=1, kind="map")
def t_drop_label_column(table: pa.Table, p) -> pa.Table:
    """A broken stage: returns rows without the `label` column the cls contract requires."""
    return table.drop_columns(["label"])


@stage("t_bio_only", version=1, kind="map", consumes=("bio",))
def t_bio_only(table: pa.Table, p) -> pa.Table:
    """Accepts only bio rows."""
    return table


@dataclass(frozen=True)
class SeededParams:
    seed: int = param(0, "random seed")
    knob: int = param(1, "an execution setting", knob=True)


@stage("t_seeded", version=1, kind="map", params=SeededParams)
def t_seeded(table: pa.Table, p: SeededParams) -> pa.Table:
    """Has a `seed` param for `defaults: {seed: ...}` to fill."""
    return table


MODEL_LOADS = []  # one entry per model instance: the runner must load a model once per node


@stage("t_model", version=1, kind="model")
class TModel:
    """A model stage: loads once, then marks every row (column `scored`)."""

    def __init__(self, p):
        MODEL_LOADS.append(p)

    def __call__(self, table: pa.Table) -> pa.Table:
        return table.append_column("scored", pa.array([True] * table.num_rows))


@dataclass(frozen=True)
class OversampleParams:
    drop_label: str = param("drop", "rows with this label are rejected")
    copies: int = param(2, "rows added at the end: copies of the first kept row")


@stage("t_oversample", version=1, kind="global", params=OversampleParams)
class TOversample:
    """A global stage. Drop reasons: `unwanted_label:<label>`. Adds `copies` copies of the first kept row, with
    lineage (`parent_id`, `aug: copy`), after the last row: fit finds that row, the batch that ends the
    input carries the copies."""

    def __init__(self, p: OversampleParams, kind: str):
        self.p = p

    def fit(self, tables) -> dict:
        seen, first = 0, None
        for t in tables:
            if first is None:
                wanted = t.filter(pc.not_equal(t.column("label"), self.p.drop_label))
                first = wanted.slice(0, 1) if wanted.num_rows else None
            seen += t.num_rows
        return {"rows": seen, "first": first}

    def apply(self, table: pa.Table, state: dict, rows: range) -> Outcome:
        labels = table.column("label").to_pylist()
        out = Outcome.split(table, [f"unwanted_label:{x}" if x == self.p.drop_label else None for x in labels])
        if rows.stop == state["rows"] and state["first"] is not None and self.p.copies:
            out.added = copies_of(state["first"], self.p.copies)
        return out


def copies_of(row: pa.Table, copies: int) -> pa.Table:
    rows = pa.concat_tables([row] * copies)
    parents = rows.column("id")
    ids = pa.array([f"{pid}#copy{k}" for k, pid in enumerate(parents.to_pylist())], pa.string())
    rows = rows.set_column(0, "id", ids).append_column("parent_id", parents)
    return rows.append_column("aug", pa.array(["copy"] * rows.num_rows, pa.string()))


@dataclass(frozen=True)
class SlowParams:
    delay: float = param(0.0, "seconds to sleep per chunk of rows", knob=True)
    chunk_rows: int = param(100, "rows per chunk", knob=True)


@stage("t_slow", version=1, kind="map", params=SlowParams)
def t_slow(table: pa.Table, p: SlowParams) -> pa.Table:
    """Return the batch unchanged, slowly; touch $DATAPREP_TEST_MARKER after the first chunk (for kill tests)."""
    marker = os.environ.get("DATAPREP_TEST_MARKER")
    for i in range(0, max(table.num_rows, 1), p.chunk_rows):
        time.sleep(p.delay)
        if i == 0 and marker:
            Path(marker).touch()
    return table


@dataclass(frozen=True)
class EchoModelParams:
    base: str | dict[str, str] | None = param(None, "a model: {node: NAME}, a directory or a hub id", model_ref=True)


@stage("t_echo_model", version=1, kind="build", params=EchoModelParams, produces="model")
def t_echo_model(batches, p: EchoModelParams, out_dir: Path) -> dict:
    """A build node whose 'model' is a file naming the base model path it was given (what an adapter records)."""
    out_dir.mkdir(parents=True)
    (out_dir / "base.txt").write_text(str(p.base))
    return {"rows": sum(b.num_rows for b in batches())}
