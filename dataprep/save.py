"""A node's rows as files other tools read: one file per split, one schema, in the format the next tool wants.

The cache keeps a node as part files beside its manifest, rejects and stats, because that is what makes it
checkable and resumable; other tools should not have to know that layout. `save` writes
`train.<ext>`, `validation.<ext>`, `test.<ext>` (or `data.<ext>` for rows without a `split` column):
- `parquet`, `jsonl`, `csv` (cls and parallel rows; a list column has no CSV form), `conll` (bio rows);
- `hf`: a `datasets.DatasetDict` (a `Dataset` without splits) saved with `save_to_disk`;
- `llamafactory`: alpaca-style JSON (instruction, input, output) per split and the `dataset_info.json` that
  registers them, so `--dataset NAME_train` works in LLaMA-Factory.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.errors import ConfigError
from dataprep.schema import SCHEMAS

FORMATS = ("parquet", "jsonl", "csv", "conll", "hf", "llamafactory")
SPLITS = ("train", "validation", "test")
WHOLE = "data"  # the file stem of rows that carry no split


def load(pipeline, node: str, cache_dir: str = "runs") -> pa.Table:
    """A cached node's rows as one `pyarrow.Table` (its part files unified into one schema). `pipeline` is a
    path or a loaded Pipeline; the node must have run (`dataprep run PIPELINE --until NODE`)."""
    runner = _runner(pipeline, cache_dir)
    return runner.output(_cached_rows_node(runner, node))


def save_node(pipeline, node: str, out_dir: str | Path, fmt: str = "parquet", cache_dir: str = "runs",
              overwrite: bool = False) -> dict[str, int]:
    """Write a cached node's rows to `out_dir` in `fmt`; {file stem: rows}."""
    runner = _runner(pipeline, cache_dir)
    name = _cached_rows_node(runner, node)
    kind = runner.pipeline.nodes[name].kind
    return save(runner.output(name), out_dir, fmt, kind, f"{runner.pipeline.name}_{name}", overwrite)


def save(table: pa.Table, out_dir: str | Path, fmt: str, kind: str, name: str = "dataset",
         overwrite: bool = False) -> dict[str, int]:
    """Write `table` (rows of record kind `kind`) to `out_dir`, one file per split; {file stem: rows}."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    _check_format_fits(fmt, kind)
    out = Path(out_dir)
    parts = by_split(_ordered(table, kind))
    targets = [out] if fmt == "hf" else [out / f"{stem}{_SUFFIX[fmt]}" for stem in parts]
    if fmt == "llamafactory":
        targets.append(out / "dataset_info.json")
    _refuse_to_overwrite(targets, overwrite, fmt)
    out.mkdir(parents=True, exist_ok=True)
    _WRITERS[fmt](parts, out, kind, name)
    return {stem: part.num_rows for stem, part in parts.items()}


def by_split(table: pa.Table) -> dict[str, pa.Table]:
    """{split: rows} in the order train, validation, test, then any other split; {"data": rows} without one."""
    if "split" not in table.column_names:
        return {WHOLE: table}
    present = [s for s in pc.unique(table.column("split")).to_pylist() if s is not None]
    if None in pc.unique(table.column("split")).to_pylist():
        raise ConfigError("some rows have no split (null `split`): save them before `split`, or split them all")
    order = [s for s in SPLITS if s in present] + sorted(s for s in present if s not in SPLITS)
    return {s: table.filter(pc.equal(table.column("split"), s)) for s in order}


# ------------------------------------------------------------------------------------------------ writers

def _flat(parts: dict[str, pa.Table], out: Path, kind: str, name: str, fmt: str) -> None:
    from dataprep.io import write_table
    for stem, part in parts.items():
        write_table(part, str(out / f"{stem}{_SUFFIX[fmt]}"))


def _hf(parts: dict[str, pa.Table], out: Path, kind: str, name: str) -> None:
    from datasets import Dataset, DatasetDict
    if list(parts) == [WHOLE]:
        Dataset(parts[WHOLE]).save_to_disk(str(out))
    else:
        DatasetDict({stem: Dataset(part) for stem, part in parts.items()}).save_to_disk(str(out))


def _llamafactory(parts: dict[str, pa.Table], out: Path, kind: str, name: str) -> None:
    labels = _labels(parts) if kind == "cls" else []
    info = {}
    for stem, part in parts.items():
        records = [_ALPACA[kind](row, labels) for row in part.to_pylist()]
        (out / f"{stem}.json").write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
        info[f"{name}_{stem}"] = {"file_name": f"{stem}.json", "formatting": "alpaca",
                                  "columns": {"prompt": "instruction", "query": "input", "response": "output"}}
    (out / "dataset_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")


def _labels(parts: dict[str, pa.Table]) -> list[str]:
    """The label set the instruction offers: every label of the training rows (of all rows without splits)."""
    source = parts.get("train", next(iter(parts.values())))
    return sorted(x for x in pc.unique(source.column("label")).to_pylist() if x is not None)


def _cls_record(row: dict, labels: list[str]) -> dict:
    return {"instruction": f"Classify the text. Answer with one of: {', '.join(labels)}.",
            "input": row["text"], "output": row["label"]}


def _bio_record(row: dict, labels: list[str]) -> dict:
    from dataprep.stages.bio import spans
    joiner = "" if row.get("lang") in ("zh", "ja") else " "
    entities = [f"{s.type}: {joiner.join(row['tokens'][s.start:s.end])}" for s in spans(row["tags"], "IOB2")]
    return {"instruction": "List the named entities of the text, one per line as TYPE: mention (none if "
                           "there are none).",
            "input": joiner.join(row["tokens"]), "output": "\n".join(entities) or "none"}


def _parallel_record(row: dict, labels: list[str]) -> dict:
    return {"instruction": f"Translate from {row['src_lang']} to {row['tgt_lang']}.", "input": row["src"],
            "output": row["tgt"]}


_ALPACA: dict[str, Callable[[dict, list[str]], dict]] = {"cls": _cls_record, "bio": _bio_record,
                                                         "parallel": _parallel_record}
_SUFFIX = {"parquet": ".parquet", "jsonl": ".jsonl", "csv": ".csv", "conll": ".conll", "llamafactory": ".json"}
_WRITERS = {fmt: (lambda f: lambda parts, out, kind, name: _flat(parts, out, kind, name, f))(fmt)
            for fmt in ("parquet", "jsonl", "csv", "conll")}
_WRITERS.update({"hf": _hf, "llamafactory": _llamafactory})


# ------------------------------------------------------------------------------------------------ checks

def _check_format_fits(fmt: str, kind: str) -> None:
    if fmt == "csv" and kind == "bio":
        raise ConfigError("bio rows hold token and tag lists, which CSV cannot: use jsonl, parquet, conll or hf")
    if fmt == "conll" and kind != "bio":
        raise ConfigError(f"conll holds token/tag rows, and these are {kind} rows: use jsonl, parquet, csv or hf")


def _refuse_to_overwrite(targets: list[Path], overwrite: bool, fmt: str) -> None:
    if overwrite:
        return
    there = [t for t in targets if t.exists() and (fmt != "hf" or t.is_file() or any(t.iterdir()))]
    if there:
        raise ConfigError(f"{there[0]} exists; pass --overwrite (overwrite=True) to replace what this save writes")


def _ordered(table: pa.Table, kind: str) -> pa.Table:
    """The record contract's columns first, in contract order, then the others as they came."""
    contract = [f.name for f in SCHEMAS[kind] if f.name in table.column_names]
    return table.select(contract + [c for c in table.column_names if c not in contract])


def _runner(pipeline, cache_dir: str):
    from dataprep.dag import load_pipeline
    from dataprep.runner import Runner
    return Runner(pipeline if hasattr(pipeline, "nodes") else load_pipeline(pipeline), cache_dir)


def _cached_rows_node(runner, node: str) -> str:
    if node not in runner.pipeline.nodes:
        raise ConfigError(f"no node {node!r} in pipeline {runner.pipeline.name} (nodes: "
                          f"{', '.join(runner.pipeline.nodes)})")
    if runner.pipeline.nodes[node].kind == "model":
        raise ConfigError(f"{node!r} builds a model, not rows: its directory is `dataprep path PIPELINE {node}`")
    cache = runner.cache(node)
    status, problem = cache.state(checksums=True)  # its files are about to be handed to another tool
    if status == "corrupt":
        raise cache.corrupt_error(problem, "run the pipeline to recompute it")
    if status != "cached":
        raise ConfigError(f"{node!r} has not run yet: `dataprep run PIPELINE --until {node}` first")
    return node
