"""YAML pipeline -> validated DAG. Everything that can be checked is checked here, before any data moves:
unknown stages, unknown or mistyped params, missing inputs or files, cycles, and schema kinds on every edge.

    name: zh_reviews
    defaults: {seed: 13}          # applied to every stage that has a param of that name
    imports: [my_stages]          # optional: modules that register custom stages with @stage
    nodes:
      raw:   {uses: read_jsonl, with: {path: sample_data/zh_reviews.jsonl}}
      clean: {uses: normalize, input: raw}
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dataprep import registry
from dataprep.errors import ConfigError
from dataprep.registry import MODEL, Stage

PIPELINE_KEYS = {"name", "defaults", "imports", "nodes"}
NODE_KEYS = {"uses", "input", "with"}


@dataclass(frozen=True)
class Node:
    name: str
    stage: Stage
    params: Any
    inputs: tuple[str, ...]
    kind: str  # the schema kind of the rows this node outputs, or "model" for build nodes
    models: dict[str, str] = field(default_factory=dict)  # model param -> the build node it names

    @property
    def deps(self) -> tuple[str, ...]:
        """Every node this one waits for: its row inputs and the nodes that build its models."""
        return self.inputs + tuple(n for n in self.models.values() if n not in self.inputs)


@dataclass
class Pipeline:
    name: str
    nodes: dict[str, Node]  # in topological order: every node after its inputs
    source: Path | None = None

    def ancestors(self, name: str) -> set[str]:
        """`name` and every node it depends on."""
        seen, todo = set(), [name]
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(self.nodes[n].deps)
        return seen

    def descendants(self, name: str) -> set[str]:
        """`name` and every node that depends on it."""
        out = {name}
        for n, node in self.nodes.items():  # topological order: inputs are seen first
            if out.intersection(node.deps):
                out.add(n)
        return out


def load_pipeline(path: str | Path) -> Pipeline:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"pipeline file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    pipeline = parse_pipeline(doc, default_name=path.stem)
    pipeline.source = path
    return pipeline


def parse_pipeline(doc: Any, default_name: str = "pipeline") -> Pipeline:
    if not isinstance(doc, dict):
        raise ConfigError("a pipeline is a mapping with 'nodes'")
    _no_unknown(doc, PIPELINE_KEYS, None, "")
    _import_modules(doc.get("imports") or [])
    nodes, defaults = doc.get("nodes"), doc.get("defaults") or {}
    if not isinstance(nodes, dict) or not nodes:
        raise ConfigError("'nodes' must be a non-empty mapping of node name to {uses, input, with}", key="nodes")
    if not isinstance(defaults, dict):
        raise ConfigError("'defaults' must be a mapping", key="defaults")
    specs = {name: _parse_node(name, spec, defaults) for name, spec in nodes.items()}
    ordered = _topological(specs)
    return Pipeline(str(doc.get("name") or default_name), _resolve_kinds(ordered, specs))


def _import_modules(modules: Any) -> None:
    """Custom stages live in ordinary modules; importing one runs its @stage registrations."""
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ConfigError("'imports' must be a list of module names", key="imports")
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ConfigError(f"cannot import {module!r}: {e}", key="imports") from None


def _parse_node(name: str, spec: Any, defaults: dict) -> tuple[Stage, Any, tuple[str, ...], dict[str, str]]:
    if not isinstance(spec, dict):
        raise ConfigError("a node is a mapping with 'uses', 'input' and 'with'", name)
    _no_unknown(spec, NODE_KEYS, name, "")
    if "uses" not in spec:
        raise ConfigError("missing 'uses': which stage this node runs", name, "uses")
    stages = registry.all_stages()
    if spec["uses"] not in stages:
        raise ConfigError(f"unknown stage {spec['uses']!r} (see `dataprep stages`)", name, "uses")
    stage = stages[spec["uses"]]
    values = dict(spec.get("with") or {}) if isinstance(spec.get("with") or {}, dict) else spec["with"]
    fields = {f.name for f in dataclasses.fields(stage.params)}
    for key, value in defaults.items():  # pipeline-wide defaults (seed) fill params the node left unset
        if key in fields and isinstance(values, dict):
            values.setdefault(key, value)
    params = stage.make_params(values, node=name)
    inputs = spec.get("input")
    inputs = () if inputs is None else (inputs,) if isinstance(inputs, str) else inputs
    if not isinstance(inputs, (list, tuple)) or not all(isinstance(i, str) for i in inputs):
        raise ConfigError("'input' must be a node name or a list of node names", name, "input")
    _check_inputs(name, stage, params, tuple(inputs))
    return stage, params, tuple(inputs), _model_nodes(name, params)


def _model_nodes(name: str, params: Any) -> dict[str, str]:
    """Model params given as `{node: NAME}`: the nodes that must build those models first."""
    out = {}
    for key in registry.model_ref_fields(type(params)):
        ref = getattr(params, key)
        if isinstance(ref, dict):
            if set(ref) != {"node"} or not isinstance(ref["node"], str):
                raise ConfigError(f"a model node reference is {{node: NAME}}, got {ref!r}", name, f"with.{key}")
            out[key] = ref["node"]
    return out


def _check_inputs(name: str, stage: Stage, params: Any, inputs: tuple[str, ...]) -> None:
    if stage.kind == "source":
        if inputs:
            raise ConfigError(f"{stage.name} reads files and takes no 'input'", name, "input")
        path = getattr(params, "path", "") or ""
        if not getattr(params, "name", None) and (not path or not Path(path).exists()):  # Path("") is "."
            raise ConfigError(f"file not found: {path!r}" if path else "missing 'path'", name, "with.path")
    elif not inputs:
        raise ConfigError(f"{stage.name} needs an 'input' node", name, "input")


def _topological(specs: dict) -> list[str]:
    """Node names with every node after its inputs; a missing input or a cycle is a ConfigError."""
    for name, (_, _, inputs, models) in specs.items():
        for i in inputs:
            if i not in specs:
                raise ConfigError(f"input {i!r} is not a node of this pipeline", name, "input")
        for key, m in models.items():
            if m not in specs:
                raise ConfigError(f"model node {m!r} is not a node of this pipeline", name, f"with.{key}")
    order, state = [], {}  # state: 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name):] + [name]
            raise ConfigError(f"cycle: {' -> '.join(cycle)}", name, "input")
        state[name] = 1
        inputs, models = specs[name][2], specs[name][3]
        for i in (*inputs, *models.values()):
            visit(i, path + [name])
        state[name] = 2
        order.append(name)

    for name in specs:
        visit(name, [])
    return order


def _resolve_kinds(order: list[str], specs: dict) -> dict[str, Node]:
    """Give each node its output schema kind; an edge whose kind the stage does not accept is an error."""
    nodes: dict[str, Node] = {}
    for name in order:
        stage, params, inputs, models = specs[name]
        for key, m in models.items():
            if nodes[m].kind != MODEL:
                raise ConfigError(f"{m!r} outputs rows, not a model (use a build stage such as pretrain_lm)",
                                  name, f"with.{key}")
        kinds = [nodes[i].kind for i in inputs]
        if MODEL in kinds:
            raise ConfigError(f"{inputs[kinds.index(MODEL)]!r} builds a model; name it in a model parameter as "
                              "{node: NAME}, not as an input", name, "input")
        if len(set(kinds)) > 1:
            raise ConfigError(f"inputs have different schema kinds: {dict(zip(inputs, kinds))}", name, "input")
        in_kind = kinds[0] if kinds else None
        if in_kind is not None and in_kind not in stage.consumes:
            raise ConfigError(f"{stage.name} takes {'/'.join(stage.consumes)} rows, but {inputs[0]!r} gives "
                              f"{in_kind!r} rows", name, "input")
        nodes[name] = Node(name, stage, params, inputs, stage.output_kind(params, in_kind), models)
    return nodes


def _no_unknown(mapping: dict, allowed: set[str], node: str | None, prefix: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})", node,
                              f"{prefix}{key}")
