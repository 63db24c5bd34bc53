"""Variants of one DAG: the pipeline with nodes bypassed (ablation) or parameters swept, each trained with
several seeds and scored on the same test rows, summarised as one table.

    plan = plan_ablation(pipeline, "adapter", ["unique", "kept", "aug"], seeds=3)
    plan = plan_sweep(pipeline, "adapter", parse_settings(["adapter.r=4,8,16,32"]), seeds=1)
    results = run_plan(plan, "runs")      # the results document (below); also what `-o` writes as JSON
    print(to_markdown(results))

A variant is an ordinary `Pipeline` under the same name, so it shares the cache with the pipeline as written:
node keys hash the stage, its params and its inputs' keys, so every node upstream of the first change has the
same key in every variant and is computed once. Bypassing a node makes its consumers read its input instead;
only a node with one row input whose rows keep their kind can be bypassed (not a reader, a build, `split`, or
the target). `--seeds N` varies the trainer's `seed` and nothing else.

A comparison is only meaningful on the same test rows, so a plan is refused, before any data moves, when a
change could reach the rows the target is scored on: a bypassed or swept node (or a node downstream of it on
the way to those rows) that runs before the test split is assigned, assigns it, or acts on test rows
(`all_splits: true`, `only_split: test`). After the runs the scored rows are checked again: each run's test
rows (ids, texts, labels) are hashed, and a run whose digest differs from the first stops the comparison.

The results document (`run_plan`'s return value, JSON-ready; `load_results` reads the file back):

    kind            "ablation" | "sweep"
    pipeline        the pipeline's name;  source: its file;  target, trainer: node names;  task: seq_cls, ...
    metrics         the metric names reported, in order (accuracy, macro_f1 | f1, precision, recall | perplexity)
    seeds           the trainer seeds of every variant
    test_rows       {"rows": N, "digest": sha256 of the scored rows, "split": the split scored}
    reference       the label of the variant deltas are taken against (the pipeline as written)
    wall_seconds    the whole plan, cached nodes included
    variants        one per variant, reference first:
        label, change ({"bypass": [...]} or {"set": {"node.param": value}}), rows (the trainer's input rows),
        train_rows, trainable_params (weights in the saved adapter: LoRA matrices and the head),
        train_seconds {mean, std}, metrics {name: {mean, std, values, delta, delta_se}},
        runs: [{seed, key (the target's), metrics, train_seconds, nodes_ran, nodes_cached, seconds}]

`std` is the sample standard deviation over seeds (None for one seed); `delta` is the variant's mean minus the
reference's mean, `delta_se` its standard error, sqrt(s²/n + s_ref²/n_ref) (None for one seed).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataprep.dag import Node, Pipeline, load_yaml
from dataprep.errors import ConfigError, DataprepError, brief
from dataprep.registry import MODEL, model_ref_fields
from dataprep.scope import check_evaluation_rows_untouched, row_filter

TRAINER = "train_lora"
SCORER = "evaluate"  # scores an adapter on its input rows: a held-out file, or a split's test rows
METRICS = ("accuracy", "macro_f1", "f1", "precision", "recall", "perplexity")
CONTENT = ("id", "text", "label", "tokens", "tags")  # what a test row is compared by
ADAPTER_WEIGHTS = "adapter_model.safetensors"


class VariantError(DataprepError):
    """The variants ran, but cannot be compared: they were scored on different test rows."""


# ------------------------------------------------------------------------------------------------------ plans

@dataclass(frozen=True)
class Variant:
    label: str          # "full", "without unique", "adapter.r=4"
    change: dict        # {} for the reference, {"bypass": [names]} or {"set": {"node.param": value}}
    pipeline: Pipeline  # at the trainer's own seed; Plan.runs() makes one pipeline per seed


@dataclass(frozen=True)
class Run:
    variant: Variant
    seed: int
    pipeline: Pipeline


@dataclass
class Plan:
    kind: str                   # "ablation" or "sweep"
    base: Pipeline
    target: str
    trainer: str
    seeds: tuple[int, ...]
    variants: list[Variant] = field(default_factory=list)  # the reference (the pipeline as written) first

    def runs(self) -> list[Run]:
        """Every (variant, seed), variant by variant: the reference first, so the shared prefix is computed by
        the first run and found cached by all the others."""
        return [Run(v, seed, with_params(v.pipeline, self.trainer, {"seed": seed}))
                for v in self.variants for seed in self.seeds]

    def keys(self) -> dict[tuple[str, int], str]:
        """(variant label, seed) -> the target's cache key in that run."""
        return {(r.variant.label, r.seed): pipeline_keys(r.pipeline)[self.target] for r in self.runs()}


def pipeline_keys(pipeline: Pipeline) -> dict[str, str]:
    """Every node's cache key, as the runner computes them (without touching a cache)."""
    from dataprep.cache import node_key
    keys: dict[str, str] = {}
    for name, node in pipeline.nodes.items():
        keys[name] = node_key(node, [keys[i] for i in node.inputs], {k: keys[m] for k, m in node.models.items()})
    return keys


def plan_ablation(pipeline: Pipeline, target: str, without: Iterable[str | Iterable[str]], seeds: int = 1
                  ) -> Plan:
    """The pipeline as written, then one variant per entry of `without`: a node name, or several nodes
    (`["aug", "balanced"]`, `aug+balanced` on the command line) bypassed together. Refused, with a ConfigError
    saying why, when a node cannot be bypassed or bypassing it would change the test rows."""
    trainer = trainer_of(pipeline, target)
    plan = Plan("ablation", pipeline, target, trainer, seed_values(pipeline, trainer, seeds))
    plan.variants.append(Variant("full", {}, pipeline))
    groups = [(w,) if isinstance(w, str) else tuple(w) for w in without]
    if not groups:
        raise ConfigError("--without names no node to bypass")
    for group in groups:
        label = f"without {'+'.join(group)}"
        if any(v.label == label for v in plan.variants):
            raise ConfigError(f"--without: {'+'.join(group)!r} is listed twice")
        variant = bypass(pipeline, group, target)  # first whether it can be bypassed at all, then the test rows
        for name in group:
            check_same_test_rows(pipeline, target, name, f"bypassing {name!r}")
        plan.variants.append(Variant(label, {"bypass": list(group)}, variant))
    return plan


def plan_sweep(pipeline: Pipeline, target: str, settings: dict[tuple[str, str], list], seeds: int = 1) -> Plan:
    """The pipeline as written, then one variant per point of the grid of `settings` ((node, param) -> values;
    parse_settings reads `adapter.r=4,8,16,32`). Each value is type-checked as the YAML value would be. A grid
    point that is the pipeline as written is the reference itself, not a second row."""
    trainer = trainer_of(pipeline, target)
    if not settings:
        raise ConfigError("--set names no parameter to sweep")
    for (node, param), values in settings.items():
        _check_sweepable(pipeline, trainer, node, param, seeds)
        for value in values:  # every value type-checked before anything else is said or done
            with_params(pipeline, node, {param: value})
    for node, param in settings:
        check_same_test_rows(pipeline, target, node, f"setting {node}.{param}")
    plan = Plan("sweep", pipeline, target, trainer, seed_values(pipeline, trainer, seeds))
    written = {f"{n}.{p}": getattr(pipeline.nodes[n].params, p) for n, p in settings}
    plan.variants.append(Variant(f"as written ({_describe(written)})", {}, pipeline))
    for point in itertools.product(*settings.values()):
        values = {f"{n}.{p}": v for (n, p), v in zip(settings, point)}
        variant = pipeline
        for (node, param), value in zip(settings, point):
            variant = with_params(variant, node, {param: value})
        if values != written:
            plan.variants.append(Variant(_describe(values), {"set": values}, variant))
    return plan


def _describe(values: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in values.items())


def trainer_of(pipeline: Pipeline, target: str) -> str:
    """The train_lora node whose seed `--seeds` varies: the target itself, or the adapter an evaluate target
    scores."""
    node = _node(pipeline, target, "--target")
    if node.stage.name == TRAINER:
        return target
    adapter = node.models.get("adapter")
    if node.stage.name == SCORER and adapter and pipeline.nodes[adapter].stage.name == TRAINER:
        return adapter
    raise ConfigError(f"--target {target!r} is a {node.stage.name} node: the target must be a {TRAINER} node, or "
                      f"an {SCORER} node that scores one (its metrics are what the variants are compared by)")


def seed_values(pipeline: Pipeline, trainer: str, seeds: int) -> tuple[int, ...]:
    """The trainer's own seed and the next `seeds - 1`: the first run of the reference is the pipeline as
    written, so it is a cache hit when the pipeline has been run."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    first = pipeline.nodes[trainer].params.seed
    return tuple(range(first, first + seeds))


def _node(pipeline: Pipeline, name: str, what: str) -> Node:
    if name not in pipeline.nodes:
        raise ConfigError(f"{what}: no node {brief(name)} in pipeline {pipeline.name!r} "
                          f"(nodes: {', '.join(pipeline.nodes)})")
    return pipeline.nodes[name]


def _check_sweepable(pipeline: Pipeline, trainer: str, node: str, param: str, seeds: int) -> None:
    spec = _node(pipeline, node, f"--set {node}.{param}")
    if param in model_ref_fields(type(spec.params)):
        raise ConfigError(f"--set {node}.{param}: a model parameter cannot be swept (it names a model, which "
                          "decides the DAG's shape); sweep the params of the node that builds it")
    if node == trainer and param == "seed" and seeds > 1:
        raise ConfigError(f"--set {node}.seed and --seeds {seeds} both set the trainer's seed: use one of them")


# ---------------------------------------------------------------------------------------- building variants

def with_params(pipeline: Pipeline, node: str, values: dict[str, Any]) -> Pipeline:
    """The pipeline with `values` replacing some params of `node`, checked as the YAML loader checks them (an
    unknown name or a value of the wrong type is a ConfigError naming nodes.NODE.with.PARAM)."""
    spec = _node(pipeline, node, "--set")
    current = {f.name: getattr(spec.params, f.name) for f in dataclasses.fields(spec.params)}
    unknown = [k for k in values if k not in current]
    if unknown:  # build_params says the same, but naming only the keys the user gave
        raise ConfigError(f"unknown parameter {brief(unknown[0])} (known: {', '.join(current)})", node,
                          f"with.{unknown[0]}")
    params = spec.stage.make_params({**current, **values}, node=node)
    nodes = {n: dataclasses.replace(s, params=params) if n == node else s for n, s in pipeline.nodes.items()}
    return Pipeline(pipeline.name, nodes, pipeline.source)


def bypass(pipeline: Pipeline, names: Iterable[str], target: str) -> Pipeline:
    """The pipeline without `names`: each one's consumers read its input instead (a chain of bypassed nodes
    passes through to the first input that stays). Refused for a node that cannot pass its rows through
    unchanged: a reader, a build, `split` (or any split-assigning stage), the target, a node with several
    inputs, one that changes the rows' kind, or one whose consumer already reads its input."""
    names = list(dict.fromkeys(names))
    for name in names:
        _check_bypassable(pipeline, name, target)
    gone = set(names)
    source_of: dict[str, str] = {}
    nodes: dict[str, Node] = {}
    for name, node in pipeline.nodes.items():  # topological order: a node's inputs are resolved before it
        inputs = tuple(source_of.get(i, i) for i in node.inputs)
        if name in gone:
            source_of[name] = inputs[0]
            continue
        twice = next((i for i in inputs if inputs.count(i) > 1), None)
        if twice is not None:
            raise ConfigError(f"cannot bypass {', '.join(repr(n) for n in names)}: {name!r} would read {twice!r} "
                              "twice (once directly, once through the bypassed node), doubling its rows", name,
                              "input")
        nodes[name] = dataclasses.replace(node, inputs=inputs) if inputs != node.inputs else node
    check_evaluation_rows_untouched(nodes)  # what the loader checks of any DAG, for the rewired one too
    return Pipeline(pipeline.name, nodes, pipeline.source)


def _check_bypassable(pipeline: Pipeline, name: str, target: str) -> None:
    node = _node(pipeline, name, "--without")
    why = None
    if name == target:
        why = "it is the target, whose metrics the variants are compared by"
    elif node.stage.kind == "source":
        why = "it is a reader: there is no input to pass through"
    elif node.stage.assigns_splits:
        why = "it assigns the splits the target is trained and scored on"
    elif node.kind == MODEL:
        why = "it builds a model, which its consumers cannot do without (sweep its params instead)"
    elif len(node.inputs) != 1:
        why = f"it has {len(node.inputs)} inputs ({', '.join(node.inputs)}): which one would pass through?"
    elif pipeline.nodes[node.inputs[0]].kind != node.kind:
        why = f"it turns {pipeline.nodes[node.inputs[0]].kind!r} rows into {node.kind!r} rows"
    if why:
        raise ConfigError(f"cannot bypass {name!r} ({node.stage.name}): {why}")


# ------------------------------------------------------------------------------------- the same test rows

def check_same_test_rows(pipeline: Pipeline, target: str, changed: str, what: str) -> None:
    """Refuse a change to `changed` that could reach the rows `target` is scored on: every row node on the way
    to those rows that the change affects (`changed` itself and what runs downstream of it) must leave test
    rows alone."""
    scored = set().union(*(pipeline.ancestors(i) for i in pipeline.nodes[target].inputs))
    affected = pipeline.descendants(changed)
    for name in pipeline.nodes:  # topological order: the first node that breaks the rule is named
        if name not in scored or name not in affected:
            continue
        reason = test_rows_touched(pipeline, name)
        if reason is None:
            continue
        via = "" if name == changed else f" reaches {name!r} ({pipeline.nodes[name].stage.name}), which"
        raise ConfigError(
            f"cannot compare the variants: {what}{via} changes the test rows {target!r} is scored on: "
            f"{reason}. Every variant must be scored on the same untouched test rows, or a difference in the "
            "metric may come from a different test set: assign the test split upstream of it (`split` first, "
            "the node scoped only_split: train), or score on a held-out file (an evaluate node as --target)")


def test_rows_touched(pipeline: Pipeline, name: str) -> str | None:
    """Why row node `name` may change which rows are test rows or what they hold; None when it cannot (a
    build, or a node after the split that is scoped away from test rows)."""
    node = pipeline.nodes[name]
    if node.kind == MODEL:
        return None  # changes no rows itself: the nodes that use its model are checked in their turn
    if node.stage.assigns_splits:
        return f"{name!r} assigns the test split, so what reaches it decides the test rows"
    if not any(pipeline.nodes[a].stage.assigns_splits for a in pipeline.ancestors(name)):
        splits = [n for n in pipeline.descendants(name) if pipeline.nodes[n].stage.assigns_splits]
        where = f"upstream of {splits[0]!r}" if splits else "with no split upstream of it"
        return f"{name!r} runs {where}, so what it does decides which rows are scored"
    p = node.params
    if getattr(p, "all_splits", False):
        return f"{name!r} acts on every split, test rows included (all_splits: true)"
    if getattr(p, "only_split", None) == "test":
        return f"{name!r} acts on the test rows (only_split: test)"
    if getattr(p, "only_split", None) or getattr(p, "only_augmented", False) or getattr(p, "keep_originals", False):
        return None  # the runner routes test rows around it (scope.py), or it may drop only generated rows
    return f"{name!r} declares no scope that keeps it off test rows"


# -------------------------------------------------------------------------------------------------- running

def run_plan(plan: Plan, cache_root: str | Path, say: Callable[[str], None] | None = None) -> dict:
    """Run every (variant, seed) up to the target, check they were scored on the same test rows, and return the
    results document (module docstring). `say` gets one line per run (the CLI prints it on stderr)."""
    from dataprep.runner import Runner
    started = time.perf_counter()
    measured: dict[str, list[dict]] = {v.label: [] for v in plan.variants}
    first_rows = None
    for i, run in enumerate(plan.runs(), 1):
        runner = Runner(run.pipeline, cache_root)
        t0 = time.perf_counter()
        reports = runner.run(until=plan.target)
        result = measure(runner, plan, run.seed)
        result.update(seconds=round(time.perf_counter() - t0, 2), nodes_ran=sum(r.status == "ran" for r in reports),
                      nodes_cached=sum(r.status == "cached" for r in reports))
        first_rows = first_rows or result["test_rows"]
        if result["test_rows"] != first_rows:
            raise VariantError(_mismatch(run, first_rows, result["test_rows"]))
        measured[run.variant.label].append(result)
        if say:
            say(f"[{i}/{len(plan.variants) * len(plan.seeds)}] {run.variant.label}, seed {run.seed}: "
                f"{result['nodes_ran']} node(s) ran, {result['nodes_cached']} cached, {result['seconds']:.1f} s")
    return summarise(plan, measured, first_rows, time.perf_counter() - started)


def _mismatch(run: Run, first: dict, now: dict) -> str:
    return (f"{run.variant.label} (seed {run.seed}) was scored on different test rows than the first run "
            f"({now['rows']} rows, digest {now['digest'][:12]}, vs {first['rows']} rows, digest "
            f"{first['digest'][:12]}): a node changed test rows although its scope says it would not; the "
            "variants cannot be compared")


def measure(runner, plan: Plan, seed: int) -> dict:
    """What one run gives the table: the target's metrics, the trainer's rows, weights and time, and the digest
    of the rows the target was scored on."""
    trainer_dir = runner.model_dir(plan.trainer)
    metrics = json.loads((runner.model_dir(plan.target) / "metrics.json").read_text())
    efficiency = _json_or_empty(trainer_dir / "efficiency.json")
    rows = trainer_rows(runner, plan.trainer)
    return {"seed": seed, "key": runner.keys[plan.target], "task": _task(trainer_dir),
            "metrics": {m: metrics[m] for m in METRICS if isinstance(metrics.get(m), (int, float))},
            "train_seconds": efficiency.get("train_seconds"), "trainable_params": trainable_params(trainer_dir),
            "rows": rows["rows"], "train_rows": rows["train"], "test_rows": scored_rows(runner, plan.target)}


def _json_or_empty(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _task(adapter_dir: Path) -> str | None:
    return _json_or_empty(adapter_dir / "label_map.json").get("task")


def trainable_params(adapter_dir: Path) -> int | None:
    """The number of weights the adapter saved: its LoRA matrices and the modules trained in full (the head),
    which are exactly the parameters that trained. Read from the safetensors header, without loading torch."""
    path = adapter_dir / ADAPTER_WEIGHTS
    if not path.is_file():
        return None
    from safetensors import safe_open
    with safe_open(str(path), framework="np") as f:
        return sum(_numel(f.get_slice(k).get_shape()) for k in f.keys())


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def trainer_rows(runner, trainer: str) -> dict:
    """The rows the trainer read (the cleaning's output: "rows kept") and how many of them it trained on."""
    rows = train = 0
    for name in runner.pipeline.nodes[trainer].inputs:
        for batch in runner.cache(name).iter_batches(runner.batch_rows):
            rows += batch.num_rows
            if "split" in batch.column_names:
                train += sum(s == "train" for s in batch.column("split").to_pylist())
    return {"rows": rows, "train": train}


def scored_rows(runner, target: str) -> dict:
    """The rows `target` was scored on, as a count and a digest of their ids and contents: for train_lora its
    input's test split (validation when it has none, as the trainer falls back), for evaluate the input rows
    its scope lets through."""
    node = runner.pipeline.nodes[target]
    inside = row_filter(node.params) if node.stage.name == SCORER else None
    by_split: dict[str, list[str]] = {}
    for name in node.inputs:
        for batch in runner.cache(name).iter_batches(runner.batch_rows):
            if inside is not None and "split" in batch.column_names:
                batch = batch.filter(inside(batch))
            columns = [c for c in CONTENT if c in batch.column_names]
            splits = batch.column("split").to_pylist() if "split" in batch.column_names else ["all"] * len(batch)
            for split, row in zip(splits, batch.select(columns).to_pylist()):
                by_split.setdefault(split or "all", []).append(json.dumps(row, ensure_ascii=False, sort_keys=True))
    split = _scored_split(by_split, node.stage.name)
    rows = sorted(itertools.chain.from_iterable(by_split.values()) if split == "all" else by_split.get(split, []))
    digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return {"rows": len(rows), "digest": digest, "split": split}


def _scored_split(by_split: dict[str, list], stage: str) -> str:
    if stage == SCORER:
        return "all"
    return next((s for s in ("test", "validation", "train") if by_split.get(s)), "all")


# --------------------------------------------------------------------------------------------------- tables

def summarise(plan: Plan, measured: dict[str, list[dict]], test_rows: dict, wall: float) -> dict:
    """The results document (module docstring) from each variant's runs."""
    reference = plan.variants[0].label
    names = [m for m in METRICS if all(m in r["metrics"] for runs in measured.values() for r in runs)]
    base = {m: [r["metrics"][m] for r in measured[reference]] for m in names}
    variants = []
    for v in plan.variants:
        runs = measured[v.label]
        stats = {m: _spread([r["metrics"][m] for r in runs]) for m in names}
        for m in names:
            own = v.label == reference
            stats[m]["delta"] = None if own else stats[m]["mean"] - statistics.fmean(base[m])
            stats[m]["delta_se"] = None if own else delta_se(stats[m]["values"], base[m])
        train_seconds = [r["train_seconds"] for r in runs if r["train_seconds"] is not None]
        variants.append({
            "label": v.label, "change": v.change, "rows": runs[0]["rows"], "train_rows": runs[0]["train_rows"],
            "trainable_params": runs[0]["trainable_params"], "metrics": stats,
            "train_seconds": _spread(train_seconds) if train_seconds else None,
            "runs": [{k: r[k] for k in ("seed", "key", "metrics", "train_seconds", "nodes_ran", "nodes_cached",
                                        "seconds")} for r in runs]})
    return {"kind": plan.kind, "pipeline": plan.base.name, "source": str(plan.base.source or ""),
            "target": plan.target, "trainer": plan.trainer, "task": measured[reference][0]["task"],
            "metrics": names, "seeds": list(plan.seeds), "test_rows": test_rows, "reference": reference,
            "wall_seconds": round(wall, 1), "variants": variants}


def delta_se(values: list[float], reference: list[float]) -> float | None:
    """The standard error of a difference of two means, sqrt(s1²/n1 + s2²/n2): how far a Δ is from the seed
    noise (a Δ within about two of these is not a finding). None with fewer than two seeds."""
    if len(values) < 2 or len(reference) < 2:
        return None
    return (statistics.variance(values) / len(values) + statistics.variance(reference) / len(reference)) ** 0.5


def _spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "values": values}


LABELS = {"accuracy": "accuracy", "macro_f1": "macro-F1", "f1": "entity F1", "precision": "entity P",
          "recall": "entity R", "perplexity": "perplexity"}


def to_markdown(results: dict) -> str:
    """The results document as a Markdown table with a line saying what was compared on what."""
    head, rows = table_cells(results)
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    lines += [f"| {' | '.join(cells)} |" for cells in rows]
    lines += ["", footer(results)]
    return "\n".join(lines) + "\n"


def table_cells(results: dict) -> tuple[list[str], list[list[str]]]:
    """The table of the results document as plain-text cells: (header, one row per variant). The Markdown
    table and the report's variants section both show exactly these."""
    sweep = results["kind"] == "sweep"
    names = [m for m in results["metrics"] if m not in ("precision", "recall")]  # entity F1 says it
    head = ["variant"]
    for m in names:
        head += [LABELS[m], "Δ"]
    head.append("rows (train)")
    head += ["trainable params", "train s"] if sweep else ["train s"]
    rows = []
    for v in results["variants"]:
        cells = [v["label"]]
        for m in names:
            cells += [_mean_std(v["metrics"][m], 3), _delta(v["metrics"][m])]
        cells.append(f"{v['rows']:,} ({v['train_rows']:,})")
        if sweep:
            cells.append(f"{v['trainable_params']:,}" if v["trainable_params"] is not None else "—")
        cells.append(_mean_std(v["train_seconds"], 1) if v["train_seconds"] else "—")
        rows.append(cells)
    return head, rows


def footer(results: dict) -> str:
    """One sentence: what the table compared, on which rows, with how many seeds, and how long it took."""
    t, seeds, trainer = results["test_rows"], results["seeds"], results["trainer"]
    rows = f"{t['rows']:,} {'' if t['split'] == 'all' else t['split'] + ' '}rows (sha256 {t['digest'][:12]})"
    spread = f"mean ± std over {len(seeds)} seeds" if len(seeds) > 1 else "1 seed"
    delta = f"Δ against {results['reference']!r}" + (" ± its standard error" if len(seeds) > 1 else "")
    runs = [r for v in results["variants"] for r in v.get("runs", [])]
    cached = " (every run found cached: each node's own time is in its stats.json)" if runs and not any(
        r.get("nodes_ran") for r in runs) else ""
    return (f"{results['pipeline']} → {results['target']}: every variant scored on the same {rows}; {spread} of "
            f"{trainer} ({', '.join(map(str, seeds))}); {delta}; rows: what {trainer} read (train split in "
            f"brackets); wall time {results['wall_seconds']:.0f} s{cached}.")


def _mean_std(s: dict | None, digits: int) -> str:
    if s is None:
        return "—"
    return f"{s['mean']:.{digits}f}" + (f" ± {s['std']:.{digits}f}" if s["std"] is not None else "")


def _delta(s: dict) -> str:
    if s["delta"] is None:
        return "—"
    se = s.get("delta_se")
    return f"{s['delta']:+.3f}" + (f" ± {se:.3f}" if se is not None else "")


def results_paths(output: str | Path) -> tuple[Path, Path]:
    """Where write_results puts the table (OUTPUT) and the results document (OUTPUT with the suffix .json)."""
    md = Path(output)
    if md.suffix == ".json":
        raise ConfigError(f"-o {str(output)!r}: name the Markdown file (e.g. table.md); the JSON goes beside it")
    return md, md.with_suffix(".json")


def write_results(results: dict, output: str | Path) -> tuple[Path, Path]:
    """OUTPUT (the Markdown table) and OUTPUT with the suffix .json (the results document)."""
    md, js = results_paths(output)
    md.write_text(to_markdown(results), encoding="utf-8")
    js.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return md, js


def load_results(path: str | Path) -> dict:
    """A results document written by write_results (`dataprep ablate/sweep -o`): what a report renders."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------- command line

def parse_without(items: Iterable[str]) -> list[list[str]]:
    """`unique,kept` -> [["unique"], ["kept"]]; `aug+balanced` bypasses both in one variant."""
    groups = []
    for item in items:
        for part in item.split(","):
            names = [n.strip() for n in part.split("+") if n.strip()]
            if names:
                groups.append(names)
    return groups


def parse_settings(items: Iterable[str]) -> dict[tuple[str, str], list]:
    """`adapter.r=4,8,16,32` -> {("adapter", "r"): [4, 8, 16, 32]}. Values are YAML, as in a pipeline file
    (`adapter.target_modules=[c_attn],[c_attn,c_proj]` is two lists); the node is everything before the last
    dot (a node name may hold dots, a parameter name never does)."""
    settings: dict[tuple[str, str], list] = {}
    for item in items:
        name, sep, text = item.partition("=")
        node, dot, param = name.strip().rpartition(".")
        if not sep or not dot or not node or not param or not text.strip():
            raise ConfigError(f"--set {brief(item)}: expected NODE.PARAM=V1,V2,... (e.g. adapter.r=4,8,16,32)")
        values = load_yaml(f"[{text}]", f"--set {name}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"--set {brief(item)}: expected a comma-separated list of values")
        twice = [v for i, v in enumerate(values) if v in values[:i]]
        if twice:
            raise ConfigError(f"--set {name}: {brief(twice[0])} is listed twice")
        if (node, param) in settings:
            raise ConfigError(f"--set {name} is given twice")
        settings[(node, param)] = values
    return settings
