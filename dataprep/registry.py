"""Stage registration: `@stage(name, version, kind, params)` and lookup by name.

A stage is a small function (map, filter) or class (model, global, source) over `pyarrow.Table`s. Registration is
explicit (no entry-point magic), so `dataprep stages` and the DAG validator see exactly what is importable.

Kinds and their call shapes:
  source  fn(params) -> iterator of (Outcome, records_read)    readers: files -> rows + rejects
  map     fn(table, params) -> Table | Outcome                  one batch in, same rows out (or some rejected)
  filter  fn(table, params) -> (keep_mask, reasons)             the runner splits kept and rejected rows
  model   cls(params); obj(table) -> Table | Outcome            loads its model once, lazily
  global  cls(params, kind); state = obj.fit(tables); obj.apply(table, state, rows) -> Outcome
                                                                all rows first (dedup, split, ...); apply is pure
  build   fn(batches, params, out_dir[, work_dir]) -> notes     builds a model from rows (tokenizer, tiny LM)

dataprep/execute.py drives each kind over batches; dataprep/catalog.py lists the built-in stages.

A `build` node outputs a model directory instead of rows; other nodes name it in a model parameter as
`{node: NAME}` (see dataprep/models/refs.py), which is also how a hub id or a local directory is given.
"""
from __future__ import annotations

import dataclasses
import inspect
import textwrap
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from dataprep.errors import ConfigError, brief, one_line
from dataprep.outcome import Outcome

KINDS = ("source", "map", "filter", "model", "global", "build")
MODEL = "model"  # the output kind of build nodes: a directory, not rows
SAME_AS_INPUT = "input"


def param(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable | None = None,
          knob: bool = False, model_ref: bool = False, added: bool = False):
    """A stage parameter: every one has a default and a help string (shown by `dataprep stages NAME`).

    `knob=True` marks an execution setting (batch size, workers) that cannot change the output: it is left
    out of the cache key, so tuning it never invalidates a cached node. `model_ref=True` marks a model
    reference (hub id, local directory or `{node: NAME}`): the DAG orders and keys the node after NAME.
    `added=True` marks a param added to an existing stage whose default changes nothing: at its default it is
    left out of the key, so cached nodes stay valid (no version bump is needed for an option that is off).
    """
    metadata = {"help": help, "knob": knob, "model_ref": model_ref, "added": added}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def model_ref_fields(params_cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(params_cls) if f.metadata.get("model_ref")]


def key_params(params: Any) -> dict:
    """The params that decide a stage's output: all but the execution knobs, and but a param `added` to a stage
    whose default leaves the output as it was — at that default, so that existing nodes keep their keys."""
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)
            if not f.metadata.get("knob") and not (f.metadata.get("added") and getattr(params, f.name) == f.default)}


@dataclass(frozen=True)
class NoParams:
    """For stages that take no parameters."""


@dataclass(frozen=True)
class SplitScoped:
    """Params mixin for stages that may run after `split`: they say which rows they may touch. The runner
    routes every other row around the stage, so it reaches the output untouched (dataprep/scope.py).
    After `split`, a node must say it: the DAG refuses one that would silently touch evaluation rows."""
    only_split: str | None = param(None, "act only on rows of this split (e.g. train); others pass through")
    only_augmented: bool = param(False, "act only on generated rows (non-null `aug`); others pass through")
    all_splits: bool = param(False, "after `split`: act on every split, validation and test included, knowingly")

    def declares_scope(self) -> bool:
        """Whether these params say which rows a node after `split` may touch."""
        return bool(self.only_split or self.only_augmented or self.all_splits)


@dataclass(frozen=True)
class Stage:
    name: str
    version: int
    kind: str
    params: type
    impl: Callable
    consumes: tuple[str, ...]           # schema kinds accepted on input; () for sources
    produces: str | Callable[[Any], str]  # a schema kind, SAME_AS_INPUT, or fn(params) -> kind
    assigns_splits: bool = False        # writes the `split` column: nodes after it must keep off evaluation rows
    # fn(notes, params, node) -> notes, called once every batch is done: judges the node as a whole (it may
    # raise to stop the node, e.g. backtranslate's yield); the notes it returns join the ledger.
    check_totals: Callable[[dict, Any, str], dict] | None = None
    # reads the `split` column itself, each split in its role (train_lora: train, select, score), so it may
    # run after `split` without declaring a scope
    reads_splits: bool = False
    # a build that checkpoints as it goes: the driver hands it a work directory the cache keeps until the node
    # commits, so a killed run resumes (train_lora)
    resumable: bool = False

    @property
    def doc(self) -> str:
        return (self.impl.__doc__ or "").strip()

    def output_kind(self, params: Any, input_kind: str | None) -> str:
        if callable(self.produces):
            return self.produces(params)
        return input_kind if self.produces == SAME_AS_INPUT else self.produces

    def make_params(self, values: dict | None = None, node: str | None = None) -> Any:
        return build_params(self.params, values or {}, node=node)

    # --- the Python API: a registered stage is a function over a table (conversion: dataprep/frames.py) ---
    def __call__(self, data, **params):
        """Run this stage on a pyarrow.Table, pandas or polars DataFrame, datasets.Dataset or DatasetDict;
        return the kept (and added) rows as the same type."""
        from dataprep import frames
        return frames.call(self, data, params)

    def run(self, data, **params) -> Outcome:
        """Like calling the stage, but return the full Outcome: kept, rejected (with reasons) and added rows,
        each a pyarrow.Table whatever came in (a DatasetDict's rows carry their `split`)."""
        from dataprep import frames
        return frames.run(self, data, params)

    def __post_init__(self):
        # help(stage) and IDEs show a function: the stage's name, its docstring and its parameters
        for attr, value in (("__name__", self.name), ("__qualname__", self.name),
                            ("__module__", getattr(self.impl, "__module__", __name__)), ("__doc__", _api_doc(self))):
            object.__setattr__(self, attr, value)

    def __get__(self, instance, owner=None):
        """A non-data descriptor, as functions are, so that inspect and help() document a stage as one; looked
        up on a class or an instance it is still the stage itself, never a bound method."""
        return self

    def __getattr__(self, name: str):
        if name == "__signature__":  # built when asked (help, inspect.signature): registration stays cheap
            return _api_signature(self)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def _api_signature(spec: Stage) -> inspect.Signature:
    """`normalize(data, /, *, nfkc: bool = True, ..., text_field: str = 'text', ...)`: the stage's params, then
    the column arguments of the Python API (dataprep/frames.py)."""
    from dataprep.frames import COLUMN_DEFAULTS, Columns
    try:
        hints = typing.get_type_hints(spec.params)
    except Exception:  # an annotation that does not resolve: show the names without types
        hints = {}
    kw = inspect.Parameter.KEYWORD_ONLY
    out = [inspect.Parameter("data", inspect.Parameter.POSITIONAL_ONLY)]
    own = set()
    for f in dataclasses.fields(spec.params):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore
        out.append(inspect.Parameter(f.name, kw, default=default, annotation=hints.get(f.name, f.type)))
        own.add(f.name)
    column_hints = typing.get_type_hints(Columns)
    out += [inspect.Parameter(name, kw, default=default, annotation=column_hints[name])
            for name, default in COLUMN_DEFAULTS.items() if name not in own]
    return inspect.Signature(out)


def _api_doc(spec: Stage) -> str:
    """The stage's docstring, what it takes and returns in Python, and each parameter with its help text."""
    lines = [inspect.cleandoc(spec.impl.__doc__ or f"The {spec.name} stage."), ""]
    if spec.kind in ("source", "build"):
        lines += [f"A {spec.kind} stage: use it as a node of a pipeline (`dataprep stages {spec.name}`)."]
    else:
        lines += ["Takes a pyarrow.Table, a pandas or polars DataFrame, a datasets.Dataset or DatasetDict and",
                  f"returns the kept and added rows as the same type; `{spec.name}.run(data, ...)` returns the",
                  "Outcome (kept, rejected with id/reason/record, added: pyarrow Tables). The columns may be",
                  "named: text_field, label_field (cls), tokens_field, tags_field (bio), id_field, lang_field;",
                  "lang= and source= fill rows that have none (see dataprep.frames)."]
    try:
        rows = params_help(spec.params)
    except Exception:  # never let the docs break a registration
        rows = [(f.name, str(f.type), "", f.metadata.get("help", "")) for f in dataclasses.fields(spec.params)]
    if rows:
        lines += ["", "Parameters:"]
        for name, kind, default, help_text in rows:
            lines += [f"    {name}: {kind} = {default!r}"]
            lines += textwrap.wrap(help_text, 104, initial_indent=" " * 8, subsequent_indent=" " * 8)
    return "\n".join(lines)


_REGISTRY: dict[str, Stage] = {}


def stage(name: str, version: int, kind: str, params: type = NoParams,
          consumes: tuple[str, ...] = ("cls", "bio", "parallel"), produces=SAME_AS_INPUT,
          assigns_splits: bool = False, check_totals: Callable[[dict, Any, str], dict] | None = None,
          reads_splits: bool = False, resumable: bool = False):
    """Register a stage. Bump `version` whenever its output for the same input and params changes:
    the version is part of every cache key downstream."""
    if kind not in KINDS:
        raise ValueError(f"stage {name}: kind must be one of {KINDS}, got {kind!r}")
    if not (dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen):
        raise TypeError(f"stage {name}: params must be a frozen dataclass")

    def register(impl):
        if name in _REGISTRY:
            raise ValueError(f"stage {name!r} is registered twice")
        spec = Stage(name, version, kind, params, impl, () if kind == "source" else tuple(consumes), produces,
                     assigns_splits, check_totals, reads_splits, resumable)
        _REGISTRY[name] = spec
        return spec
    return register


def registered() -> dict[str, Stage]:
    """The stages registered so far (dataprep/catalog.py loads the built-in ones first)."""
    return _REGISTRY


# --- params: build a frozen dataclass from YAML values, rejecting unknown keys and wrong types by name ---

def build_params(cls: type, values: dict, node: str | None = None):
    if not isinstance(values, dict):
        raise ConfigError(f"'with' must be a mapping, got {type(values).__name__}", node, "with")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in values:
        if key not in fields:
            raise ConfigError(f"unknown parameter {brief(key)} (known: {', '.join(fields) or 'none'})",
                              node, f"with.{one_line(str(key), 40)}")
    for key, value in values.items():
        if not _type_ok(value, hints[key]):
            raise ConfigError(f"expected {_type_name(hints[key])}, got {brief(value)}", node, f"with.{key}")
        if (huge := _beyond_64_bits(value)) is not None:
            raise ConfigError(f"{brief(huge)} is out of range (integers are limited to 64 bits)", node,
                              f"with.{key}")
    try:
        return cls(**values)
    except (TypeError, ValueError, ArithmeticError) as e:  # __post_init__ checks of ranges and combinations
        raise ConfigError(one_line(str(e), 300), node, "with") from None


def _beyond_64_bits(value: Any, budget: int = 100_000) -> int | None:
    """The first integer in `value` (inside lists and dicts too) that no int64 holds: no Arrow column, numpy
    array or seed takes one, so it is refused here instead of overflowing in the middle of a run."""
    stack = [value]
    while stack and budget > 0:
        v, budget = stack.pop(), budget - 1
        if isinstance(v, int) and not isinstance(v, bool) and not -(1 << 63) <= v < (1 << 63):
            return v
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend((*v.keys(), *v.values()))
    return None


def _type_ok(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return any(_type_ok(value, a) for a in args)
    if origin is Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple)) and all(_type_ok(v, args[0]) for v in value) if args else True
    if origin is dict:
        return isinstance(value, dict) and all(_type_ok(k, args[0]) and _type_ok(v, args[1])
                                               for k, v in value.items()) if args else True
    return isinstance(value, hint) if isinstance(hint, type) else True


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return " or ".join(_type_name(a) for a in args)
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint)) if origin is None else str(hint).replace("typing.", "")


def params_help(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) for each parameter, for `dataprep stages NAME`."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore
        rows.append((f.name, _type_name(hints[f.name]), default, f.metadata.get("help", "")))
    return rows
