"""The `dataprep` command. Thin on purpose: parse arguments, call the library, print.

Heavy modules (pyarrow, datasets, torch) are imported inside commands, so `dataprep --help` answers at once.
"""
from __future__ import annotations

import os
import sys

import click


def _load(pipeline_path: str):
    from dataprep.dag import load_pipeline
    from dataprep.errors import ConfigError
    try:
        return load_pipeline(pipeline_path)
    except ConfigError as e:
        raise click.ClickException(f"{pipeline_path}: {e}") from None


def _runner(pipeline_path: str, cache_dir: str, show_progress: bool = False):
    from dataprep.runner import Runner
    progress = _TerminalProgress() if show_progress else None
    kwargs = {"progress": progress} if progress else {}
    return Runner(_load(pipeline_path), cache_dir, **kwargs)


cache_option = click.option("--cache-dir", default=lambda: os.environ.get("DATAPREP_CACHE", "runs"),
                            show_default="runs, or $DATAPREP_CACHE", help="where node outputs are cached")


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
@cache_option
def run(pipeline, until, force, cache_dir):
    """Run PIPELINE: every node that is not cached yet."""
    from dataprep.errors import DataprepError
    runner = _runner(pipeline, cache_dir, show_progress=True)
    for name in (until, *force):
        if name and name not in runner.pipeline.nodes:
            raise click.BadParameter(f"no node {name!r} in {pipeline}")
    try:
        reports = runner.run(until=until, force=force)
    except DataprepError as e:
        raise click.ClickException(str(e)) from None
    ran = sum(r.status == "ran" for r in reports)
    click.echo(f"{runner.pipeline.name}: {ran} node(s) ran, {len(reports) - ran} cached", err=True)


@main.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@cache_option
def plan(pipeline, cache_dir):
    """Show each node's cache key and whether it would run."""
    for r in _runner(pipeline, cache_dir).plan():
        status = "cached" if r.status == "cached" else "will run"
        click.echo(f"{r.node:<16} {r.stage:<16} {r.key}  {status}")


@main.command()
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.option("--rejects", metavar="NODE", help="list NODE's rejected rows instead of the ledger")
@click.option("--limit", default=50, show_default=True, help="rows to list with --rejects")
@cache_option
def show(pipeline, rejects, limit, cache_dir):
    """Print the ledger of every node: rows in, out, added, dropped by reason."""
    runner = _runner(pipeline, cache_dir)
    if rejects:
        return _show_rejects(runner, rejects, limit)
    click.echo(f"{'node':<16} {'stage':<16} {'status':<8} {'in':>8} {'out':>8} {'added':>7} {'dropped':>8}  reasons")
    for r in runner.plan():
        if r.ledger is None:
            click.echo(f"{r.node:<16} {r.stage:<16} {'missing':<8}")
            continue
        led = r.ledger
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(led.dropped.items()))
        if led.notes:
            reasons += "  (" + ", ".join(f"{k}={v}" for k, v in sorted(led.notes.items())) + ")"
        click.echo(f"{r.node:<16} {r.stage:<16} {'cached':<8} {led.rows_in:>8} {led.rows_out:>8} "
                   f"{led.added:>7} {led.dropped_total:>8}  {reasons}")


def _show_rejects(runner, node: str, limit: int) -> None:
    if node not in runner.pipeline.nodes or not runner.cache(node).committed:
        raise click.ClickException(f"node {node!r} has no cached output; run the pipeline first")
    table = runner.rejects(node)
    for row in table.slice(0, limit).to_pylist():
        click.echo(f"{row['id']}\t{row['reason']}\t{row['record'][:100]}")
    if table.num_rows > limit:
        click.echo(f"... {table.num_rows - limit} more (--limit)", err=True)


@main.command()
@click.argument("name", required=False)
def stages(name):
    """List the registered stages, or show one stage's parameters."""
    from dataprep.registry import all_stages, params_help
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
def clean(pipeline, everything, cache_dir):
    """Remove cache entries that no current node key uses (or all of them with --all)."""
    import shutil
    from pathlib import Path
    runner = _runner(pipeline, cache_dir)
    root, removed = Path(cache_dir) / runner.pipeline.name, 0
    for entry in sorted(root.glob("*/*")) if root.is_dir() else []:
        node, key = entry.parent.name, entry.name
        if everything or runner.keys.get(node) != key:
            shutil.rmtree(entry)
            removed += 1
    click.echo(f"removed {removed} cache entr{'y' if removed == 1 else 'ies'} under {root}")


@main.command("stage")
@click.argument("name")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.option("-o", "--output", required=True, help="output file: .jsonl, .csv, .tsv or .parquet")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="a stage parameter (YAML value)")
@click.option("--read", "read_settings", multiple=True, metavar="KEY=VALUE",
              help="a reader option, e.g. text_field=review")
def stage_cmd(name, input_path, output, settings, read_settings):
    """Run one stage NAME on a file as a batch job; rejects go to OUTPUT's name + .rejects.jsonl."""
    from dataprep.batch import run_stage_on_file
    from dataprep.errors import DataprepError
    try:
        summary = run_stage_on_file(name, input_path, output, _pairs(settings), _pairs(read_settings))
    except DataprepError as e:
        raise click.ClickException(str(e)) from None
    click.echo(summary, err=True)


@main.command("train")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.option("-o", "--output", required=True, help="directory for the adapter, tokenizer, metrics and report")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="a train_lora parameter, e.g. base_model=path/or/hub-id, r=16, epochs=5")
@click.option("--read", "read_settings", multiple=True, metavar="KEY=VALUE", help="a reader option")
@click.option("--resume", is_flag=True, help="continue an interrupted run from its last checkpoint")
@cache_option
def train_cmd(input_path, output, settings, read_settings, resume, cache_dir):
    """Fine-tune a LoRA adapter on INPUT (split into train/validation/test unless it has a `split` column)."""
    from dataprep.batch import train_on_file
    from dataprep.errors import DataprepError
    try:
        summary = train_on_file(input_path, output, _pairs(settings), _pairs(read_settings), cache_dir, resume)
    except DataprepError as e:
        raise click.ClickException(str(e)) from None
    click.echo(summary, err=True)


@main.command("path")
@click.argument("pipeline", type=click.Path(exists=True, dir_okay=False))
@click.argument("node")
@cache_option
def path_cmd(pipeline, node, cache_dir):
    """Print where NODE's cached output is (its model directory for build nodes)."""
    runner = _runner(pipeline, cache_dir)
    if node not in runner.pipeline.nodes or not runner.cache(node).committed:
        raise click.ClickException(f"node {node!r} has no cached output; run the pipeline first")
    kind = runner.pipeline.nodes[node].kind
    click.echo(runner.model_dir(node) if kind == "model" else runner.cache(node).dir)


def _pairs(items: tuple[str, ...]) -> dict:
    import yaml
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value) if value else None
    return out


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
        counts = f"{led.rows_in:>8} in {led.rows_out:>8} out {led.dropped_total:>6} dropped" if led else ""
        timing = f"{report.seconds:6.2f}s" if report.status == "ran" else ""
        click.echo(f"{report.node:<16} {report.status:<7} {counts} {timing}", err=True)


if __name__ == "__main__":
    main()
