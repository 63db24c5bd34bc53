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
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dataprep import catalog, registry
from dataprep.cache import NAME_RULE, safe_name
from dataprep.errors import ConfigError, brief, one_line
from dataprep.modelref import ModelRef
from dataprep.registry import MODEL, Stage
from dataprep.scope import check_evaluation_rows_untouched

PIPELINE_KEYS = {"name", "defaults", "imports", "nodes"}
# defaults that say how a pipeline runs, not what it computes: outside every key
EXECUTION_DEFAULTS = ("backend", "address", "concurrency", "num_gpus")
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
    # how to run it, outside every key: {"backend": "local" | "ray", "address": a Ray cluster, "concurrency":
    # actors per model node on Ray, "num_gpus": GPUs per model actor and per build task on Ray}
    execution: dict = field(default_factory=dict)

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


MAX_YAML_VALUES = 100_000  # values in the document with every alias expanded; a real pipeline has a few hundred
MAX_YAML_DEPTH = 32        # nesting levels; a real pipeline needs about six
_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader, used to compose a node tree that load_yaml checks before anything is built from it."""


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML as a pipeline is parsed: safe types only; a duplicate mapping key is an error naming the key and
    both lines, where YAML would silently keep the last; aliases are allowed (an anchor for a shared `with:` block
    is ordinary YAML), but the document counted with every alias expanded may hold at most MAX_YAML_VALUES values,
    nested at most MAX_YAML_DEPTH deep. So a "billion laughs" file, a few lines of nested aliases standing for
    10**9 values, is rejected after 100,000 steps instead of hanging whatever formats, type-checks or hashes it.
    `source` names the text in syntax errors."""
    if _flow_depth(text) > 4 * MAX_YAML_DEPTH:  # before PyYAML, whose composer recurses once per level
        raise ConfigError(f"{source}: not valid YAML: nested too deeply")
    loader = None
    try:
        loader = _Loader(text)  # already reads: a control character fails here
        root = loader.get_single_node()
        if root is None:
            return None
        _check_tree(loader, root)
        return loader.construct_document(root)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(e, text)}") from None
    except RecursionError:  # the composer recurses once per level, before _check_tree can count them
        raise ConfigError(f"{source}: not valid YAML: nested too deeply") from None
    except ValueError as e:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise ConfigError(f"{source}: not valid YAML: {one_line(str(e))}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _flow_depth(text: str) -> int:
    """How deep `[` and `{` nest, counted naively (brackets in quoted strings count too, hence the margin the
    caller allows): thousands of levels would take PyYAML to its recursion limit, slowly, before any check."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", text):
        depth = depth + 1 if bracket in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


def _check_tree(loader: _Loader, root: yaml.Node) -> None:
    """Walk the composed document once with every alias expanded (an alias is the same node object met again),
    on an explicit stack and with a budget, so neither the size nor the depth of the document can exhaust
    anything; on the way, refuse duplicate mapping keys."""
    budget, stack = MAX_YAML_VALUES, [(root, ())]
    while stack:
        node, path = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(f"the YAML expands to more than {MAX_YAML_VALUES} values through its aliases "
                              "(a 'billion laughs' file?)", *_where(path))
        if len(path) > MAX_YAML_DEPTH:
            raise ConfigError(f"nested more than {MAX_YAML_DEPTH} levels deep", *_where(path))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            stack.extend(_mapping_children(loader, node, path))


def _mapping_children(loader: _Loader, node: yaml.MappingNode, path: tuple) -> Iterator[tuple[yaml.Node, tuple]]:
    """The key and value nodes of a mapping with their paths; a key given twice raises."""
    lines: dict = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):  # a list or mapping as a key: walked, and refused later
            yield key_node, (*path, "?")
            yield value_node, (*path, "?")
            continue
        if key_node.tag == _MERGE:  # `<<: *base` brings keys that the mapping's own keys may override
            yield value_node, path
            continue
        key, line = loader.construct_object(key_node), key_node.start_mark.line + 1
        if key in lines:
            raise ConfigError(f"duplicate key {brief(key)} (lines {lines[key]} and {line})",
                              *_where((*path, str(key))))
        lines[key] = line
        yield value_node, (*path, str(key))


def _where(path: tuple) -> tuple[str | None, str | None]:
    """(node, key) for a ConfigError at a YAML path: the mapping keys before the first list index, four at most."""
    keys = []
    for part in path:
        if isinstance(part, int) or len(keys) == 4:
            break
        keys.append(_clip(part))
    if len(keys) >= 2 and keys[0] == "nodes":
        return keys[1], ".".join(keys[2:]) or None
    return None, ".".join(keys) or None


def _yaml_problem(e: yaml.YAMLError, text: str) -> str:
    """A YAML error in one line: what is wrong and where, without PyYAML's multi-line snippet."""
    if isinstance(e, yaml.reader.ReaderError) and isinstance(e.character, int):
        line = text.count("\n", 0, e.position) + 1
        return f"unacceptable character #x{e.character:04x}: {e.reason} (line {line})"
    if not isinstance(e, yaml.MarkedYAMLError):
        return one_line(str(e))
    what = "; ".join(x for x in (e.context, e.problem) if x)
    mark = e.problem_mark or e.context_mark
    return f"{what} (line {mark.line + 1}, column {mark.column + 1})" if mark else what


def _clip(text: str, limit: int = 40) -> str:
    """A user-given name as part of an error's location: short, one line."""
    return one_line(str(text), limit)


def _read_text(path: Path) -> str:
    """The pipeline file as UTF-8 text; a byte that is not UTF-8 is a ConfigError naming its line."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}: not valid UTF-8 (byte 0x{data[e.start]:02x} on line {line})") from None


def load_pipeline(path: str | Path) -> Pipeline:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"pipeline file not found: {path}")
    doc = load_yaml(_read_text(path), str(path))
    pipeline = parse_pipeline(doc, default_name=path.stem, base_dir=path.parent)
    pipeline.source = path
    return pipeline


def parse_pipeline(doc: Any, default_name: str = "pipeline", base_dir: Path | None = None) -> Pipeline:
    """`base_dir`: the pipeline file's directory, where `imports` look first."""
    if not isinstance(doc, dict):
        raise ConfigError(f"a pipeline is a mapping with 'nodes', got {_kind_of(doc)}")
    _no_unknown(doc, PIPELINE_KEYS, None, "")
    pipeline_name = _pipeline_name(doc.get("name"), default_name)
    _import_modules([] if doc.get("imports") is None else doc["imports"], base_dir)
    nodes = doc.get("nodes")
    defaults = {} if doc.get("defaults") is None else doc["defaults"]
    if not isinstance(nodes, dict) or not nodes:
        raise ConfigError("'nodes' must be a non-empty mapping of node name to {uses, input, with}", key="nodes")
    if not isinstance(defaults, dict):
        raise ConfigError("'defaults' must be a mapping", key="defaults")
    for node_name in nodes:
        _check_node_name(node_name)
    execution = _execution(defaults)
    defaults = {k: v for k, v in defaults.items() if k not in EXECUTION_DEFAULTS}
    specs = {name: _parse_node(name, spec, defaults) for name, spec in nodes.items()}
    _check_defaults(defaults, specs)
    ordered = _topological(specs)
    nodes = _resolve_kinds(ordered, specs)
    check_evaluation_rows_untouched(nodes)
    return Pipeline(pipeline_name, nodes, execution=execution)


def _execution(defaults: dict) -> dict:
    """The execution settings among `defaults` (`backend`, `address`): how to run, never what is computed."""
    execution = {k: defaults[k] for k in EXECUTION_DEFAULTS if k in defaults}
    backend = execution.get("backend", "local")
    if backend not in ("local", "ray"):
        raise ConfigError(f"expected local or ray, got {brief(backend)}", key="defaults.backend")
    address = execution.get("address")
    if address is not None and not (isinstance(address, str) and address):
        raise ConfigError(f"expected a Ray address (a string such as auto or host:6379), got {brief(address)}",
                          key="defaults.address")
    concurrency = execution.get("concurrency")
    if concurrency is not None and not (type(concurrency) is int and concurrency >= 1):
        raise ConfigError(f"expected a whole number of actors >= 1, got {brief(concurrency)}",
                          key="defaults.concurrency")
    gpus = execution.get("num_gpus")
    if gpus is not None and not (type(gpus) in (int, float) and gpus >= 0):
        raise ConfigError(f"expected a number of GPUs >= 0 (a fraction shares one), got {brief(gpus)}",
                          key="defaults.num_gpus")
    return execution


def _kind_of(doc: Any) -> str:
    return "an empty file" if doc is None else type(doc).__name__


def _pipeline_name(name: Any, default: str) -> str:
    """The pipeline's name names its cache directory, so it is a plain name (cache.safe_name), never a path."""
    if name is None:
        if not safe_name(default):
            raise ConfigError(f"the file name gives the pipeline name {brief(default)}, which is not valid "
                              f"({NAME_RULE}); set 'name:'", key="name")
        return default
    if not isinstance(name, str):
        raise ConfigError(f"expected a string, got {brief(name)}", key="name")
    if not safe_name(name):
        raise ConfigError(f"{brief(name)} is not a valid pipeline name ({NAME_RULE})", key="name")
    return name


def _check_node_name(name: Any) -> None:
    """A node's name names its cache directory: a plain name, never a path, `..` or a number."""
    if not isinstance(name, str):
        raise ConfigError(f"node names are strings, got {type(name).__name__} {brief(name)} (quote it)",
                          key="nodes")
    if not safe_name(name):
        raise ConfigError(f"{brief(name)} is not a valid node name ({NAME_RULE})", key="nodes")


def _check_defaults(defaults: dict, specs: dict) -> None:
    """A default that no node's stage has as a parameter is a typo (`sed: 13`), not a silent no-op."""
    known = {f.name for stage, *_ in specs.values() for f in dataclasses.fields(stage.params)}
    for key in defaults:
        if key not in known:
            raise ConfigError(f"no node of this pipeline has a parameter {brief(key)}",
                              key=f"defaults.{_clip(key)}")


def _import_modules(modules: Any, base_dir: Path | None) -> None:
    """Custom stages live in ordinary modules; importing one runs its @stage registrations. While they import,
    the pipeline file's directory and then the working directory lead sys.path, so `imports: [my_stages]` finds
    my_stages.py beside the pipeline (or where dataprep runs) without PYTHONPATH=.; then sys.path is restored."""
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ConfigError("'imports' must be a list of module names", key="imports")
    with _leading_sys_path([d for d in (base_dir, Path.cwd()) if d is not None]):
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception as e:  # the user's module may fail in any way while it imports: one line, not a trace
                raise ConfigError(f"cannot import {brief(module)}: {type(e).__name__}: {one_line(str(e))}",
                                  key="imports") from None


@contextmanager
def _leading_sys_path(directories: list[Path]) -> Iterator[None]:
    """Put `directories` first on sys.path for the duration, then remove exactly the entries added."""
    entries = list(dict.fromkeys(str(d.resolve()) for d in directories))
    sys.path[:0] = entries
    importlib.invalidate_caches()  # a module file written a moment ago must be seen
    try:
        yield
    finally:
        for entry in entries:
            with suppress(ValueError):
                sys.path.remove(entry)


def _parse_node(name: str, spec: Any, defaults: dict) -> tuple[Stage, Any, tuple[str, ...], dict[str, str]]:
    if not isinstance(spec, dict):
        raise ConfigError("a node is a mapping with 'uses', 'input' and 'with'", name)
    _no_unknown(spec, NODE_KEYS, name, "")
    if "uses" not in spec:
        raise ConfigError("missing 'uses': which stage this node runs", name, "uses")
    stages = catalog.all_stages()
    if not isinstance(spec["uses"], str):
        raise ConfigError(f"expected a stage name, got {brief(spec['uses'])}", name, "uses")
    if spec["uses"] not in stages:
        raise ConfigError(f"unknown stage {brief(spec['uses'])} (see `dataprep stages`)", name, "uses")
    stage = stages[spec["uses"]]
    values = {} if spec.get("with") is None else spec["with"]
    if not isinstance(values, dict):
        raise ConfigError(f"'with' must be a mapping, got {type(values).__name__}", name, "with")
    values = dict(values)
    fields = {f.name for f in dataclasses.fields(stage.params)}
    for key, value in defaults.items():  # pipeline-wide defaults (seed) fill params the node left unset
        if key in fields:
            values.setdefault(key, value)
    params = stage.make_params(values, node=name)
    inputs = spec.get("input")
    inputs = () if inputs is None else (inputs,) if isinstance(inputs, str) else inputs
    if not isinstance(inputs, (list, tuple)) or not all(isinstance(i, str) for i in inputs):
        raise ConfigError("'input' must be a node name or a list of node names", name, "input")
    twice = next((i for i in inputs if inputs.count(i) > 1), None)
    if twice is not None:  # read twice, its rows would be doubled
        raise ConfigError(f"{brief(twice)} is listed twice (each input is read once)", name, "input")
    _check_inputs(name, stage, params, tuple(inputs))
    return stage, params, tuple(inputs), _model_nodes(name, params)


def _model_nodes(name: str, params: Any) -> dict[str, str]:
    """Model params given as `{node: NAME}`: the nodes that must build those models first."""
    out = {}
    for key in registry.model_ref_fields(type(params)):
        try:
            ref = ModelRef.parse(getattr(params, key))
        except ValueError as e:
            raise ConfigError(f"{e}, got {brief(getattr(params, key))}", name, f"with.{key}") from None
        if ref is not None and ref.kind == "node":
            out[key] = ref.value
    return out


def _check_inputs(name: str, stage: Stage, params: Any, inputs: tuple[str, ...]) -> None:
    if stage.kind == "source":
        if inputs:
            raise ConfigError(f"{stage.name} reads files and takes no 'input'", name, "input")
        problem = _source_problem(params)
        if problem:
            raise ConfigError(problem, name, "with.path")
    elif not inputs:
        raise ConfigError(f"{stage.name} needs an 'input' node", name, "input")


def _source_problem(params: Any) -> str | None:
    """What is wrong with a reader's path before any row moves: the reader's own check (a file, a directory
    or a glob of shards: dataprep/io/shards.py) when it has one."""
    if hasattr(params, "path_problem"):
        return params.path_problem()
    path = getattr(params, "path", "") or ""
    if getattr(params, "name", None) or (path and Path(path).exists()):  # Path("") is "."
        return None
    return f"file not found: {brief(path)}" if path else "missing 'path'"


def _topological(specs: dict) -> list[str]:
    """Node names with every node after its inputs; a missing input or a cycle is a ConfigError."""
    for name, (_, _, inputs, models) in specs.items():
        for i in inputs:
            if i not in specs:
                raise ConfigError(f"input {brief(i)} is not a node of this pipeline", name, "input")
        for key, m in models.items():
            if m not in specs:
                raise ConfigError(f"model node {brief(m)} is not a node of this pipeline", name, f"with.{key}")
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
                raise ConfigError(f"{brief(m)} outputs rows, not a model (use a build stage such as pretrain_lm)",
                                  name, f"with.{key}")
        kinds = [nodes[i].kind for i in inputs]
        if MODEL in kinds:
            raise ConfigError(f"{brief(inputs[kinds.index(MODEL)])} builds a model; name it in a model parameter as "
                              "{node: NAME}, not as an input", name, "input")
        # A build learns from the text of each batch, so it may mix kinds (a reference corpus of parallel
        # rows and the training split's cls rows); a row stage's output has one schema, so its inputs do too.
        if len(set(kinds)) > 1 and stage.kind != "build":
            raise ConfigError(f"inputs have different schema kinds: {dict(zip(inputs, kinds))}", name, "input")
        for i, kind in zip(inputs, kinds):
            if kind not in stage.consumes:
                raise ConfigError(f"{stage.name} takes {'/'.join(stage.consumes)} rows, but {brief(i)} gives "
                                  f"{kind!r} rows", name, "input")
        in_kind = kinds[0] if kinds else None
        nodes[name] = Node(name, stage, params, inputs, stage.output_kind(params, in_kind), models)
    return nodes


def _no_unknown(mapping: dict, allowed: set[str], node: str | None, prefix: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise ConfigError(f"unknown key {brief(key)} (allowed: {', '.join(sorted(allowed))})", node,
                              f"{prefix}{_clip(key)}")
