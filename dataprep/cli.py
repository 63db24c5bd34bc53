"""The `dataprep` command. Thin on purpose: parse arguments, call the library, print.

Heavy modules (pyarrow, datasets, torch) are imported inside commands, so `dataprep --help` answers at once.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click


def _one_line(command):
    """Every error dataprep raises on purpose ends the command in one line (click's "Error: ..."), whichever
    layer raised it: the config, the cache (a path out of its root, a pipeline another run holds) or a stage."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from dataprep.errors import DataprepError
        try:
            return command(*args, **kwargs)
        except DataprepError as e:
            raise click.ClickException(str(e)) from None
    return wrapper


def _load(pipeline_path: str):
    from dataprep.dag import load_pipeline
    from dataprep.errors import ConfigError
    try:
        return load_pipeline(pipeline_path)
    except ConfigError as e:
        message = str(e)  # errors about the file itself already start with its name: say it once
        named = message.startswith((f"{pipeline_path}:", f"{Path(pipeline_path)}:"))
        raise click.ClickException(message if named else f"{pipeline_path}: {message}") from None


def _runner(pipeline_path: str, cache_dir: str, show_progress: bool = False, backend: str | None = None,
            address: str | None = None, ray_knobs: dict | None = None):
    """The pipeline's runner: on `backend` (else the pipeline's `defaults.backend`, else local); `ray_knobs`
    (concurrency, num_gpus) given on the command line win over the pipeline's defaults."""
    from dataprep.backends import runner_for
    progress = _TerminalProgress() if show_progress else None
    kwargs = {"progress": progress} if progress else {}
    pipeline = _load(pipeline_path)
    backend = backend or pipeline.execution.get("backend", "local")
    given = {k: v for k, v in (ray_knobs or {}).items() if v is not None}
    if given and backend != "ray":
        raise click.UsageError(f"--{next(iter(given)).replace('_', '-')} is a Ray setting: add --backend ray "
                               "(or defaults: {backend: ray})")
    if backend == "ray":
        kwargs.update({k: pipeline.execution[k] for k in ("concurrency", "num_gpus") if k in pipeline.execution})
        kwargs.update(given)
    return runner_for(pipeline, cache_dir, backend, address or pipeline.execution.get("address"), **kwargs)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """`warning: MESSAGE` — not Python's default, which echoes the source line that raised it."""
    return f"warning: {message}\n"


def _console() -> None:
    """The training loop's log lines (step, loss, learning rate, tokens/s; each evaluation) on stderr, and
    warnings (a value outside the usual LoRA range, an adapter that loses to its baseline) as one line each."""
    import logging
    import warnings
    warnings.formatwarning = _one_line_warning
    logger = logging.getLogger("dataprep.train")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("  %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _cache_dir(ctx, param, value):
    """A cache directory that is a file, or a URI pyarrow cannot open, fails here, in one line, before any
    command looks inside it."""
    if value is not None and "://" in value:
        from dataprep.errors import ConfigError
        from dataprep.store import RemoteStore
        try:
            RemoteStore.open(value)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
    elif value is not None and os.path.exists(value) and not os.path.isdir(value):
        raise click.ClickException(f"--cache-dir {value!r} is not a directory")
    return value


cache_option = click.option("--cache-dir", default=lambda: os.environ.get("DATAPREP_CACHE", "runs"),
                            show_default="runs, or $DATAPREP_CACHE", callback=_cache_dir,
                            help="where node outputs are cached: a directory (a symlink to one is followed) or "
                            "a pyarrow.fs URI such as s3://bucket/prefix, with a local copy in "
                            "$DATAPREP_LOCAL_CACHE (default runs)")


@click.group()
@click.version_option(package_name="dataprep")
def main():
    """Raw labelled text to a LoRA adapter as one cached, resumable DAG.

    Start with `dataprep run pipelines/zh_reviews.yaml`, then `dataprep show` it.
    """


@main.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--until", metavar="NODE", help="run only NODE and what it depends on")
@click.option("--force", metavar="NODE", multiple=True, help="rerun NODE and its dependents even if cached")
@click.option("--backend", type=click.Choice(["local", "ray"]), default=None,
              help="where nodes run (default: the pipeline's defaults.backend, else local); same keys, same bytes")
@click.option("--address", metavar="ADDR", help="with --backend ray: the cluster to join (default: $RAY_ADDRESS, "
              "else a local one started for the run)")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="with --backend ray: actors per model node (default: defaults.concurrency, else 2)")
@click.option("--num-gpus", "num_gpus", type=click.FloatRange(min=0), default=None,
              help="with --backend ray: GPUs per model actor and per build task (default: defaults.num_gpus, else 0)")
@cache_option
@_one_line
def run(pipeline, until, force, backend, address, concurrency, num_gpus, cache_dir):
    """Run PIPELINE: every node that is not cached yet.

    One run of a pipeline at a time: a second `dataprep run` of the same pipeline on the same cache waits for
    the first to end, saying once on stderr "waiting for another run of NAME (pid N)", then reuses what the
    first one computed (`clean`, which deletes, fails at once instead of waiting). A cached entry found damaged
    (a truncated, missing or altered file, an empty manifest) is reported in one line and recomputed.
    """
    runner = _runner(pipeline, cache_dir, show_progress=True, backend=backend, address=address,
                     ray_knobs={"concurrency": concurrency, "num_gpus": num_gpus})
    _console()
    for name in (until, *force):
        if name and name not in runner.pipeline.nodes:
            raise click.BadParameter(f"no node {name!r} in {pipeline}")
    reports = runner.run(until=until, force=force)
    ran = sum(r.status == "ran" for r in reports)
    click.echo(f"{runner.pipeline.name}: {ran} node(s) ran, {len(reports) - ran} cached", err=True)


@main.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@cache_option
@_one_line
def plan(pipeline, cache_dir):
    """Show each node's cache key and whether it would run (a damaged entry is named on stderr)."""
    runner = _runner(pipeline, cache_dir)
    for r in runner.plan():
        if r.status == "corrupt":
            click.echo(_corrupt(runner, r.node, "run will recompute it"), err=True)
        status = "cached" if r.status == "cached" else "will run"
        click.echo(f"{r.node:<16} {r.stage:<16} {r.key}  {status}")


def _corrupt(runner, node: str, advice: str) -> str:
    """The one line for a damaged entry: "nodes.X: cache entry corrupt (WHY); ADVICE"."""
    cache = runner.cache(node)
    return str(cache.corrupt_error(cache.verify() or "changed while it was checked", advice))


def _require_cached(runner, node: str) -> None:
    """NODE's entry must be there and intact (checksums included: its files are about to be used)."""
    if node not in runner.pipeline.nodes:
        raise click.ClickException(f"node {node!r} has no cached output; run the pipeline first")
    status, problem = runner.cache(node).state(checksums=True)
    if status == "corrupt":
        raise click.ClickException(str(runner.cache(node).corrupt_error(problem, "run the pipeline to recompute it")))
    if status != "cached":
        raise click.ClickException(f"node {node!r} has no cached output; run the pipeline first")


@main.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--rejects", metavar="NODE", help="list NODE's rejected rows instead of the ledger")
@click.option("--limit", default=50, show_default=True, help="rows to list with --rejects")
@cache_option
@_one_line
def show(pipeline, rejects, limit, cache_dir):
    """Print the ledger of every node: rows in, out, added, dropped by reason."""
    runner = _runner(pipeline, cache_dir)
    if rejects:
        return _show_rejects(runner, rejects, limit)
    click.echo(f"{'node':<16} {'stage':<16} {'status':<8} {'in':>8} {'out':>8} {'added':>7} {'dropped':>8}  reasons")
    for r in runner.plan():
        if r.status == "corrupt":
            click.echo(_corrupt(runner, r.node, "run will recompute it"), err=True)
        if r.ledger is None:
            click.echo(f"{r.node:<16} {r.stage:<16} {r.status if r.status == 'corrupt' else 'missing':<8}")
            continue
        led = r.ledger
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(led.dropped.items()))
        if led.notes:
            reasons += "  (" + ", ".join(f"{k}={v}" for k, v in sorted(led.notes.items())) + ")"
        click.echo(f"{r.node:<16} {r.stage:<16} {'cached':<8} {led.rows_in:>8} {led.rows_out:>8} "
                   f"{led.added:>7} {led.dropped_total:>8}  {reasons}")


def _show_rejects(runner, node: str, limit: int) -> None:
    _require_cached(runner, node)
    table = runner.rejects(node)
    for row in table.slice(0, limit).to_pylist():
        click.echo(f"{row['id']}\t{row['reason']}\t{row['record'][:100]}")
    if table.num_rows > limit:
        click.echo(f"... {table.num_rows - limit} more (--limit)", err=True)


@main.command("report")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default="report.html", show_default=True, help="the HTML file to write")
@click.option("--cache-dir", "--cache", "cache_dir", default=lambda: os.environ.get("DATAPREP_CACHE", "runs"),
              show_default="runs, or $DATAPREP_CACHE", callback=_cache_dir, help="where the run's nodes are cached")
@click.option("--variants", "variants", multiple=True, type=click.Path(exists=True, dir_okay=False),
              metavar="FILE.json", help="the results of `dataprep ablate/sweep -o FILE.md` (the .json beside it): "
              "a section with its table and plot; repeatable")
@_one_line
def report_cmd(pipeline, output, cache_dir, variants):
    """Write one self-contained HTML page about PIPELINE's cached run: the funnel, sample rejected rows per
    reason, perplexity cuts, class balance, back-translations, training curves and scores, and each node's key,
    time and warnings, and any ablation or sweep given with --variants. It opens from disk with no network;
    sections without data say so in one line."""
    from dataprep.report import write_report
    _check_output_directory(output)
    path = write_report(pipeline, output, cache_dir, variants)
    click.echo(f"report written to {path}", err=True)


@main.command()
@click.argument("name", required=False)
def stages(name):
    """List the registered stages, or show one stage's parameters."""
    from dataprep.catalog import all_stages
    from dataprep.registry import params_help
    registry = all_stages()
    if name is None:
        for s in registry.values():
            summary = " ".join(s.doc.split("\n\n")[0].split()).split(". ")[0] if s.doc else ""
            click.echo(f"{s.name:<16} {s.kind:<7} v{s.version}  {summary}")
        return
    if name not in registry:
        raise click.ClickException(f"unknown stage {name!r}; `dataprep stages` lists them")
    s = registry[name]
    click.echo(f"{s.name} ({s.kind}, version {s.version}, takes {'/'.join(s.consumes) or 'files'})\n\n{s.doc}\n")
    for pname, ptype, default, help_ in params_help(s.params):
        click.echo(f"  {pname:<18} {ptype:<22} default {default!r}\n      {help_}")


@main.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--all", "everything", is_flag=True, help="remove every cached node, not only stale ones")
@cache_option
@_one_line
def clean(pipeline, everything, cache_dir):
    """Remove cache entries that no current node key uses (or all of them with --all), with scratch leftovers.

    Only what dataprep provably wrote is removed (a key directory whose manifest names its key, a `KEY.partial-*`
    or `KEY.work` directory), only under the cache root, never through a symlink. A run of the pipeline in
    progress makes clean fail at once rather than delete what the run is writing.
    """
    from dataprep.cache import clean as clean_cache
    runner = _runner(pipeline, cache_dir)
    if runner.remote is not None:  # an object store's entries are shared by every machine that names the root
        click.echo(f"cleaning the local copy {runner.cache_root} only; the entries under {cache_dir} are left "
                   "as they are", err=True)
    where = Path(runner.cache_root) / runner.pipeline.name
    done = clean_cache(runner.cache_root, runner.pipeline.name, {} if everything else runner.keys)
    if done is None:
        click.echo(f"nothing to clean: no cache at {where}")
        return
    leftovers = f" and {_count(done.leftovers, 'leftover', 'leftovers')}" if done.leftovers else ""
    click.echo(f"removed {_count(done.entries, 'cache entry', 'cache entries')}{leftovers} under {where}")
    if done.foreign:
        click.echo(f"left {_count(done.foreign, 'entry', 'entries')} under {where} alone: dataprep did not write "
                   "them (or their manifest is unreadable)")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


@main.command("stage")
@click.argument("name")
@click.argument("input_path", metavar="INPUT", type=str)  # a file, a directory or a glob: the DAG checks it
@click.option("-o", "--output", required=True, help="output file: .jsonl, .csv, .tsv or .parquet")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="a stage parameter (YAML value)")
@click.option("--read", "read_settings", multiple=True, metavar="KEY=VALUE",
              help="a reader option, e.g. text_field=review")
@click.option("--reader", metavar="NAME", help="the reader stage (read_jsonl, read_csv, read_conll, ...); "
              "default: chosen by the file's extension")
@_one_line
def stage_cmd(name, input_path, output, settings, read_settings, reader):
    """Run one stage NAME on a file as a batch job; rejects go to OUTPUT's name + .rejects.jsonl.

    A KEY=VALUE value is YAML (3, [case], {0: neg}) when it parses as YAML; one that does not, or that is blank
    or has blanks at either end (a tab delimiter), is the literal string.
    """
    from dataprep.batch import run_stage_on_file
    _check_output_directory(output)
    _console()
    summary = run_stage_on_file(name, input_path, output, _pairs(settings), _pairs(read_settings), reader)
    click.echo(summary, err=True)


def _check_output_directory(output: str) -> None:
    """The directory OUTPUT goes in must exist before the job reads a byte, not be found missing after it ran."""
    parent = Path(output).parent
    if not parent.exists():
        raise click.ClickException(f"output directory {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise click.ClickException(f"output directory {str(parent)!r} is not a directory")


@main.command("train")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.option("-o", "--output", required=True, help="directory for the adapter, tokenizer, metrics and report")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="a train_lora parameter, e.g. base_model=path/or/hub-id, r=16, epochs=5")
@click.option("--read", "read_settings", multiple=True, metavar="KEY=VALUE", help="a reader option")
@click.option("--reader", metavar="NAME", help="the reader stage; default: chosen by the file's extension")
@click.option("--resume", is_flag=True, help="continue an interrupted run from its last checkpoint")
@cache_option
@_one_line
def train_cmd(input_path, output, settings, read_settings, reader, resume, cache_dir):
    """Fine-tune a LoRA adapter on INPUT (split into train/validation/test unless every row already has a
    split: a `split` column, or a reader's split_field / split_as)."""
    from dataprep.batch import train_on_file
    _console()
    summary = train_on_file(input_path, output, _pairs(settings), _pairs(read_settings), cache_dir, resume, reader)
    click.echo(summary, err=True)


@main.command("save")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.argument("node")
@click.option("-o", "--output", required=True, help="directory for the files (created if missing)")
@click.option("--format", "fmt", default="parquet", show_default=True,
              type=click.Choice(["parquet", "jsonl", "csv", "conll", "hf", "llamafactory"]),
              help="hf: datasets save_to_disk; llamafactory: alpaca JSON + dataset_info.json")
@click.option("--overwrite", is_flag=True, help="replace files an earlier save wrote")
@cache_option
@_one_line
def save_cmd(pipeline, node, output, fmt, overwrite, cache_dir):
    """Write NODE's cached rows to OUTPUT, one file per split (train, validation, test; `data` without a split
    column), for pandas, polars, datasets.load_dataset, LLaMA-Factory or any other tool."""
    from dataprep.save import save_node
    counts = save_node(_load(pipeline), node, output, fmt, cache_dir, overwrite)
    written = ", ".join(f"{stem} {rows}" for stem, rows in counts.items())
    click.echo(f"saved {node} ({fmt}) to {output}: {written} rows", err=True)


def _adapter_options(command):
    """The options `predict` and `eval` share: how to read INPUT and how to prepare its rows."""
    for option in reversed([
            click.option("--reader", metavar="NAME", help="the reader stage; default: chosen by the file's extension"),
            click.option("--read", "read_settings", multiple=True, metavar="KEY=VALUE", help="a reader option"),
            click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                         help="an option of normalize (cls rows) or to_bio2 (bio rows), e.g. scheme=IOB1"),
            click.option("--base", metavar="DIR|ID", help="the base model, if not the one the adapter records"),
            click.option("--batch-size", default=32, show_default=True, help="rows per forward pass")]):
        command = option(command)
    return command


@main.command("predict")
@click.argument("adapter", type=click.Path(exists=True, file_okay=False))
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.option("-o", "--output", required=True, help="output file: .jsonl, .csv, .tsv or .parquet")
@_adapter_options
@_one_line
def predict_cmd(adapter, input_path, output, reader, read_settings, settings, base, batch_size):
    """Predict with ADAPTER (a train_lora output directory) on INPUT: the label and each label's probability
    (classification), BIO2 tags per token (NER) or the continuation (causal LM); rejects beside OUTPUT."""
    from dataprep.batch import rejects_path_for
    from dataprep.io import write_table
    from dataprep.predict import Adapter, read_prepared
    _check_output_directory(output)
    _console()
    rows, rejects = read_prepared(input_path, reader, _pairs(read_settings), _pairs(settings))
    predicted = Adapter.load(adapter, base).predict_table(rows, batch_size)
    write_table(predicted, output)
    write_table(rejects, str(rejects_path_for(output)))
    click.echo(f"predict: {predicted.num_rows} rows written to {output}, {rejects.num_rows} rejects to "
               f"{rejects_path_for(output)}", err=True)


@main.command("eval")
@click.argument("adapter", type=click.Path(exists=True, file_okay=False))
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.option("-o", "--output", help="also write the metrics as JSON here")
@click.option("--robustness", is_flag=True, help="also score seeded perturbations of INPUT (typos, width, "
              "punctuation, whitespace, character edits; NER: entity swaps) and the drop from clean")
@click.option("--ood", "ood_path", metavar="FILE", type=click.Path(exists=True),
              help="an out-of-domain file (read like INPUT): AUROC and FPR@95%TPR of MSP and energy scores")
@click.option("--seed", default=13, show_default=True, help="the perturbations' seed")
@_adapter_options
@_one_line
def eval_cmd(adapter, input_path, output, robustness, ood_path, seed, reader, read_settings, settings, base,
             batch_size):
    """Score ADAPTER on the labelled rows of INPUT: accuracy and macro-F1 (classification) or strict entity
    precision/recall/F1 (NER), per class or type; with --robustness and --ood, how it holds up."""
    import json

    from dataprep.predict import Adapter, read_prepared
    _console()
    rows, rejects = read_prepared(input_path, reader, _pairs(read_settings), _pairs(settings))
    model = Adapter.load(adapter, base)
    metrics = {"input": input_path, "rejects": rejects.num_rows, **model.evaluate(rows, batch_size)}
    lines = [_metrics_summary(metrics)]
    if robustness:
        from dataprep.robustness import robustness as suite
        metrics["robustness"] = suite(model, rows, seed, batch_size)
        lines.append(_robustness_summary(metrics["robustness"]))
    if ood_path:
        from dataprep.robustness import ood
        outside, _ = read_prepared(ood_path, reader, _pairs(read_settings), _pairs(settings))
        metrics["ood"] = {"file": ood_path, **ood(model, rows, outside, batch_size)}
        lines.append(_ood_summary(metrics["ood"]))
    if output:
        Path(output).write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    click.echo("\n".join(lines))


def _robustness_summary(r: dict) -> str:
    rows = [f"{'perturbation':<14} {r['metric']:>9} {'drop':>7} {'rows changed':>13}",
            f"{'clean':<14} {r['clean']:>9.3f}"]
    rows += [f"{name:<14} {e[r['metric']]:>9.3f} {e['drop']:>+7.3f} {e['rows_changed']:>13}"
             for name, e in r["perturbations"].items()]
    return "\n".join(rows)


def _ood_summary(o: dict) -> str:
    return "\n".join([f"out-of-domain: {o['in_rows']} in-domain rows vs {o['out_rows']} from {o['file']}"] +
                     [f"  {name:<7} AUROC {o[name]['auroc']:.3f}  FPR@95%TPR {o[name]['fpr_at_95_tpr']:.3f}"
                      for name in ("msp", "energy")])


def _metrics_summary(m: dict) -> str:
    head = f"{m['rows']} rows ({m['rejects']} rejected on reading)"
    if "macro_f1" in m:
        scores = f"accuracy {m['accuracy']:.3f}  macro-F1 {m['macro_f1']:.3f}"
        classes = [f"  {k:<16} P {v['precision']:.3f}  R {v['recall']:.3f}  F1 {v['f1']:.3f}  n {v['support']}"
                   for k, v in m["per_class"].items()]
    elif "f1" in m:
        scores = f"entity P {m['precision']:.3f}  R {m['recall']:.3f}  F1 {m['f1']:.3f}"
        classes = [f"  {k:<16} P {v['precision']:.3f}  R {v['recall']:.3f}  F1 {v['f1']:.3f}"
                   for k, v in m.get("per_type", {}).items()]
    else:
        scores, classes = f"perplexity {m['perplexity']:.2f}", []
    unseen = f"\nlabels the adapter never saw: {', '.join(m['unseen_labels'])}" if m.get("unseen_labels") else ""
    return "\n".join([f"{head}: {scores}", *classes]) + unseen


@main.command("serve")
@click.argument("model_dir", metavar="ADAPTER|EXPORT_DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on (0.0.0.0: every interface, e.g. in a container)")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port (0: a free one, printed on stderr)")
@click.option("--base", metavar="DIR|ID", help="the base model, if not the one the adapter records")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="torch threads of the one model call at a time")
@click.option("--max-batch", default=32, show_default=True, type=click.IntRange(1),
              help="rows per model call (requests are batched whole)")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1),
              help="rows per forward pass of an adapter: a model call's rows are sorted by length and cut "
              "into passes")
@click.option("--max-wait-ms", default=5.0, show_default=True, type=click.FloatRange(0),
              help="how long the oldest queued request waits for batch-mates")
@click.option("--max-items", default=64, show_default=True, type=click.IntRange(1),
              help="items per request (413 beyond)")
@click.option("--max-body-bytes", default=1 << 20, show_default=True, type=click.IntRange(1),
              help="request body size (413 beyond)")
@click.option("--max-queue-rows", default=1024, show_default=True, type=click.IntRange(1),
              help="rows waiting for the model before requests are refused (503)")
@click.option("--access-log", is_flag=True, help="log every request on stderr")
@_one_line
def serve_cmd(model_dir, host, port, base, threads, max_batch, batch_size, max_wait_ms, max_items, max_body_bytes,
              max_queue_rows, access_log):
    """Serve ADAPTER (a train_lora output directory) or EXPORT_DIR (`dataprep export`'s) over HTTP until
    SIGINT/SIGTERM: POST /predict with
    {"texts": [...]} (or {"tokens": [[...], ...]} for NER), GET /health, GET /metrics.

    Requests are micro-batched: one model call at a time, each of up to --max-batch rows, gathered for at most
    --max-wait-ms. A malformed request is answered 400, 413 or 422 with a message naming what is wrong.
    """
    from dataprep.serve import Limits, Server, announce, load_predictor
    limits = Limits(max_batch=max_batch, max_wait_ms=max_wait_ms, max_items=max_items,
                    max_body_bytes=max_body_bytes, max_queue_rows=max_queue_rows)
    server = Server(load_predictor(model_dir, base, threads, batch_size), limits, host, port, access_log,
                    announce=lambda s: announce(s, model_dir))
    server.run()
    click.echo(f"stopped{f' on {server.stopped_by}' if server.stopped_by else ''}: "
               f"{server.batcher.stats.batched_requests} requests predicted", err=True)


@main.command("export")
@click.argument("adapter", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, help="directory for model.onnx, the tokenizer, config.json, "
              "label_map.json and check.json (must not exist yet, or hold an earlier export: --overwrite)")
@click.option("--format", "fmt", default="onnx", show_default=True, type=click.Choice(["onnx"]))
@click.option("--quantize", type=click.Choice(["int8"]), help="also write model.int8.onnx (ONNX Runtime dynamic "
              "INT8) and count the rows on which it predicts what torch predicts")
@click.option("--check-file", type=click.Path(exists=True, dir_okay=False),
              help="rows to check the export on (any reader, e.g. the test split from `dataprep save`); default: "
              "50 texts sampled from the tokenizer's vocabulary")
@click.option("--tolerance", default=1e-4, show_default=True,
              help="fp32 check: every ONNX logit within T + T x |torch| of the merged torch model's")
@click.option("--overwrite", is_flag=True, help="replace an earlier export in OUTPUT")
@_adapter_options
@_one_line
def export_cmd(adapter, output, fmt, quantize, check_file, tolerance, overwrite, reader, read_settings, settings,
               base, batch_size):
    """Merge ADAPTER (seq_cls or token_cls) into its base and export it to ONNX with dynamic batch and
    sequence axes, optionally quantized to INT8; checked against torch before anything is written."""
    from dataprep.export import export, summary
    rows = None
    if check_file:
        from dataprep.predict import read_prepared
        rows, _ = read_prepared(check_file, reader, _pairs(read_settings), _pairs(settings))
    _console()
    check = export(adapter, output, fmt, quantize, rows, check_file, base, batch_size, tolerance, tolerance,
                   overwrite)
    click.echo("\n".join(summary(check, output)))


def _variant_options(command):
    """The options `ablate` and `sweep` share: the target, the seeds, the cache, where the table goes."""
    for option in reversed([
            click.option("--target", required=True, metavar="NODE",
                         help="the train_lora node (or an evaluate node scoring one) the variants are compared by"),
            click.option("--seeds", default=1, show_default=True, type=click.IntRange(1),
                         help="train each variant with this many seeds (the trainer's seed and the next ones; "
                         "nothing else changes): mean ± std"),
            click.option("--cache-dir", "--cache", "cache_dir",
                         default=lambda: os.environ.get("DATAPREP_CACHE", "runs"),
                         show_default="runs, or $DATAPREP_CACHE", callback=_cache_dir,
                         help="where node outputs are cached; the variants share it with the pipeline as written"),
            click.option("-o", "--output", metavar="FILE.md",
                         help="write the table here and the same numbers as JSON beside it (FILE.json)"),
            click.option("--dry-run", is_flag=True,
                         help="print each run's target key and whether it is cached, and run nothing")]):
        command = option(command)
    return command


def _run_variants(plan, cache_dir: str, output: str | None, dry_run: bool) -> None:
    """Run (or, with --dry-run, list) a plan's variants; print the Markdown table, and write it with -o."""
    from dataprep.variants import run_plan, to_markdown, write_results
    if dry_run:
        from dataprep.cache import NodeCache
        from dataprep.store import open_root
        local, remote = open_root(cache_dir)
        for (label, seed), key in plan.keys().items():
            cached = NodeCache(local, plan.base.name, plan.target, key).committed or bool(
                remote and remote.has(plan.base.name, plan.target, key))
            click.echo(f"{label:<32} seed {seed:<6} {plan.target} {key}  {'cached' if cached else 'will run'}")
        return
    if output:
        from dataprep.variants import results_paths
        results_paths(output)
        _check_output_directory(output)
    _console()
    results = run_plan(plan, cache_dir, say=lambda line: click.echo(line, err=True))
    click.echo(to_markdown(results), nl=False)
    if output:
        md, js = write_results(results, output)
        click.echo(f"wrote {md} and {js}", err=True)


@main.command("ablate")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--without", "without", multiple=True, required=True, metavar="NODE[,NODE...]",
              help="bypass each node in its own variant (its consumers read its input); a+b bypasses both in one")
@_variant_options
@_one_line
def ablate_cmd(pipeline, without, target, seeds, cache_dir, output, dry_run):
    """Train TARGET with each node of --without bypassed, and as written; table of the metric per variant (mean ±
    std over seeds, Δ against the full pipeline, rows kept). Variants share the cache for their common prefix.

    Refused before any data moves when a bypassed node could change the test rows (it runs before the test split
    is assigned, or acts on test rows): every variant is scored on the same test rows, checked again after.
    """
    from dataprep.variants import parse_without, plan_ablation
    plan = plan_ablation(_load(pipeline), target, parse_without(without), seeds)
    _run_variants(plan, cache_dir, output, dry_run)


@main.command("sweep")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--set", "settings", multiple=True, required=True, metavar="NODE.PARAM=V1,V2,...",
              help="values of one parameter (YAML, type-checked like the pipeline's); several --set: their grid")
@_variant_options
@_one_line
def sweep_cmd(pipeline, settings, target, seeds, cache_dir, output, dry_run):
    """Train TARGET at every value (or grid point) of --set; table of the metric per value (mean ± std over seeds,
    Δ against the pipeline as written), trainable parameters and training time. Refused before any data moves
    when a swept node could change the test rows."""
    from dataprep.variants import parse_settings, plan_sweep
    plan = plan_sweep(_load(pipeline), target, parse_settings(settings), seeds)
    _run_variants(plan, cache_dir, output, dry_run)


@main.command("path")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.argument("node")
@cache_option
@_one_line
def path_cmd(pipeline, node, cache_dir):
    """Print where NODE's cached output is (its model directory for build nodes)."""
    runner = _runner(pipeline, cache_dir)
    _require_cached(runner, node)
    kind = runner.pipeline.nodes[node].kind
    click.echo(runner.model_dir(node) if kind == "model" else runner.cache(node).dir)


def _pairs(items: tuple[str, ...]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = _value(value)
    return out


def _value(text: str):
    """A KEY=VALUE value: YAML when it parses (through the pipeline loader, with its limits), else the literal
    string. Blank values and values with blanks at either end are literal too: YAML would strip them to nothing,
    and `--read delimiter=<TAB>` means the tab."""
    from dataprep.dag import load_yaml
    from dataprep.errors import ConfigError
    if text == "":
        return None
    if text != text.strip():
        return text
    try:
        return load_yaml(text, "value")
    except ConfigError:  # not YAML (`: [!`): the characters as typed; the stage's type check has the last word
        return text


class _TerminalProgress:
    """A progress bar per node in a terminal; one line per node otherwise (CI logs stay short)."""

    def __init__(self):
        self.interactive = sys.stderr.isatty() and not os.environ.get("CI")
        self.bar = None

    def node_started(self, node, total_rows):
        if self.interactive:
            self.bar = click.progressbar(length=total_rows, label=f"{node.name:<16}", file=sys.stderr)
            self.bar.__enter__()

    def rows_done(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def node_finished(self, report):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        led = report.ledger
        counts = (f"{led.rows_in:>8} in {led.rows_out:>8} out {led.added:>6} added {led.dropped_total:>6} "
                  "dropped") if led else ""
        timing = f"{report.seconds:6.2f}s" if report.status == "ran" else ""
        click.echo(f"{report.node:<16} {report.status:<7} {counts} {timing}", err=True)


if __name__ == "__main__":
    main()
