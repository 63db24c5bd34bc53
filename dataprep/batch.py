"""`dataprep stage NAME INPUT -o OUTPUT`: any stage as a one-shot batch job on files.

It builds a two-node pipeline (the reader for INPUT, then the stage), runs it with the ordinary runner in a
scratch cache — so batching, validation, rejects and the ledger behave exactly as in a pipeline — and writes
the output and every reject (reader's and stage's) next to OUTPUT. The scratch cache lives for one job, so its
parts are Arrow IPC files (no compression, memory-mapped reads); only a Parquet OUTPUT is written as Parquet,
straight from the stage.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataprep.cache import pipeline_lock, read_part
from dataprep.catalog import all_stages
from dataprep.dag import parse_pipeline
from dataprep.errors import ConfigError
from dataprep.io import reader_for, write_table
from dataprep.predict import PREPARE
from dataprep.runner import Runner


def input_reader(input_path: str, reader: str | None) -> tuple[str, dict]:
    """The reader stage named (`--reader`), or the one the file's extension implies, with its defaults."""
    if reader is None:
        try:
            return reader_for(input_path)
        except ValueError as e:
            raise ConfigError(f"{e}; or name one with --reader") from None
    stages = all_stages()
    readers = sorted(n for n, s in stages.items() if s.kind == "source")
    if reader not in readers:
        raise ConfigError(f"--reader {reader!r} is not a reader: use one of {', '.join(readers)}")
    return reader, {}


def run_stage_on_file(name: str, input_path: str, output: str, params: dict, read_params: dict,
                      reader: str | None = None) -> str:
    stages = all_stages()
    if name not in stages:  # a ConfigError, not a KeyError traceback, so the CLI prints one line
        raise ConfigError(f"unknown stage {name!r} (see `dataprep stages`)")
    if Path(output).is_dir():
        raise ConfigError(f"output {output!r} is a directory; give a file name (.jsonl, .csv, .tsv, .parquet)")
    reader, read_defaults = input_reader(input_path, reader)
    nodes = {"input": {"uses": reader, "with": {**read_defaults, "path": input_path, **read_params}}}
    if stages[name].kind != "source":  # a reader named as the stage just converts formats
        nodes["output"] = {"uses": name, "input": "input", "with": params}
    formats = dict.fromkeys(nodes, "arrow")
    if Path(output).suffix.lower() == ".parquet":
        formats[list(nodes)[-1]] = "parquet"
    with tempfile.TemporaryDirectory(prefix="dataprep-stage-") as cache:
        runner = Runner(parse_pipeline({"name": "batch", "nodes": nodes}), cache, part_formats=formats)
        reports = runner.run()
        _write_output(runner.cache(reports[-1].node).parts(), output)
        rejects = pa.concat_tables([runner.rejects(r.node) for r in reports])
        rejects_path, n_rejects = rejects_path_for(output), rejects.num_rows
        write_table(rejects, str(rejects_path))
        del rejects  # it maps files of the scratch cache, which is removed next
    ledger = reports[-1].ledger
    return (f"{name}: {reports[0].ledger.rows_in} records read, {ledger.rows_out} rows written to {output}, "
            f"{n_rejects} rejects to {rejects_path}")


def _write_output(parts: list[Path], output: str) -> None:
    if len(parts) == 1 and parts[0].suffix == Path(output).suffix.lower() == ".parquet":
        shutil.move(parts[0], output)  # the node's part already is the file asked for; the cache is scratch
    else:
        write_table(pa.concat_tables([read_part(p) for p in parts], promote_options="permissive")
                    if parts else pa.table({}), output)


def rejects_path_for(output: str) -> Path:
    out = Path(output)
    return out.with_name(out.name + ".rejects.jsonl")


def train_on_file(input_path: str, output: str, params: dict, read_params: dict, cache_dir: str,
                  resume: bool, reader: str | None = None) -> str:
    """`dataprep train INPUT -o OUT`: read INPUT, prepare its rows (normalize, or to_bio2 for NER), split the
    rows that have no split, train a LoRA adapter and copy it to OUT. The reader runs first (an ordinary
    cached node): when every row it read has a split — the input's own `split` column (any reader keeps one:
    the output of `dataprep stage split`, a JSONL or CSV with a `split` field, a DatasetDict) or the reader's
    `split_as` — the adapter trains on those splits; otherwise a `split` node assigns the rows without one
    (the others keep theirs). The run is an ordinary cached pipeline under `cache_dir`, so an interrupted run
    can continue from its checkpoint with --resume (without it, a stale checkpoint is discarded)."""
    reader, read_defaults = input_reader(input_path, reader)
    nodes = {"input": {"uses": reader, "with": {**read_defaults, "path": input_path, **read_params}}}
    name = train_pipeline_name(input_path)
    # The whole job under the pipeline's lock (re-entrant, so run() takes it again): a second `dataprep train`
    # of the same file must not remove this one's checkpoints, nor a `clean` the adapter while it is copied.
    with pipeline_lock(cache_dir, name):
        read = Runner(parse_pipeline({"name": name, "nodes": nodes}), cache_dir)
        read.run()
        head = "input"
        kind = read.pipeline.nodes["input"].kind
        if kind in PREPARE:  # as training rows are prepared: a raw file's empty texts and labels become rejects
            nodes["prepared"] = {"uses": PREPARE[kind], "input": "input"}
            head = "prepared"
        if not every_row_has_a_split(read.cache("input").parts()):
            nodes["splits"] = {"uses": "split", "input": head}
            head = "splits"
        nodes["adapter"] = {"uses": "train_lora", "input": head, "with": params}
        runner = Runner(parse_pipeline({"name": name, "nodes": nodes}), cache_dir)
        work = runner.cache("adapter").work_dir
        if work.exists() and not resume:
            shutil.rmtree(work)
        runner.run()
        shutil.copytree(runner.model_dir("adapter"), output, dirs_exist_ok=True)
    return f"adapter written to {output}; see {Path(output) / 'report.md'}"


def every_row_has_a_split(parts: list[Path]) -> bool:
    """Whether a node's rows all carry a split: each part has a `split` column without nulls (or empty ones)."""
    if not parts:
        return False
    for part in parts:
        if part.suffix == ".parquet":
            if "split" not in pq.read_schema(part).names:
                return False
            column = pq.read_table(part, columns=["split"]).column("split")
        else:
            table = read_part(part)
            if "split" not in table.column_names:
                return False
            column = table.column("split")
        column = column.cast(pa.string())
        if column.null_count or pc.any(pc.equal(column, "")).as_py():
            return False
    return True


def train_pipeline_name(input_path: str) -> str:
    """`train-<file stem>`, with what a pipeline name may not hold (spaces, non-ASCII, dots) as `_`."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(input_path).stem)[:50]
    return f"train-{stem}"
