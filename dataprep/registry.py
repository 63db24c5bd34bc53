"""Stage registration: `@stage(name, version, kind, params)` and lookup by name.

A stage is a small function (map, filter) or class (model, global, source) over `pyarrow.Table`s. Registration is
explicit (no entry-point magic), so `dataprep stages` and the DAG validator see exactly what is importable.

Kinds and their call shapes:
  source  fn(params) -> iterator of (Outcome, records_read)    readers: files -> rows + rejects
  map     fn(table, params) -> Table | Outcome                  one batch in, same rows out (or some rejected)
  filter  fn(table, params) -> (keep_mask, reasons)             the runner splits kept and rejected rows
  model   cls(params); obj(table) -> Table | Outcome            loads its model once, lazily
  global  cls(params); obj.fit(tables); obj.apply(table) -> Outcome   needs all rows first (dedup, split, ...)
  build   fn(batches, params, out_dir) -> notes                 builds a model from rows (tokenizer, tiny LM)

A `build` node outputs a model directory instead of rows; other nodes name it in a model parameter as
`{node: NAME}` (see dataprep/models/refs.py), which is also how a hub id or a local directory is given.
"""
from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from dataprep.errors import ConfigError, brief, one_line
from dataprep.outcome import Outcome

KINDS = ("source", "map", "filter", "model", "global", "build")
MODEL = "model"  # the output kind of build nodes: a directory, not rows
SAME_AS_INPUT = "input"


def param(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable | None = None,
          knob: bool = False, model_ref: bool = False):
    """A stage parameter: every one has a default and a help string (shown by `dataprep stages NAME`).

    `knob=True` marks an execution setting (batch size, workers) that cannot change the output: it is left
    out of the cache key, so tuning it never invalidates a cached node. `model_ref=True` marks a model
    reference (hub id, local directory or `{node: NAME}`): the DAG orders and keys the node after NAME.
    """
    metadata = {"help": help, "knob": knob, "model_ref": model_ref}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def model_ref_fields(params_cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(params_cls) if f.metadata.get("model_ref")]


def key_params(params: Any) -> dict:
    """The params that decide a stage's output: all but the execution knobs."""
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params) if not f.metadata.get("knob")}


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

    @property
    def doc(self) -> str:
        return (self.impl.__doc__ or "").strip()

    def output_kind(self, params: Any, input_kind: str | None) -> str:
        if callable(self.produces):
            return self.produces(params)
        return input_kind if self.produces == SAME_AS_INPUT else self.produces

    def make_params(self, values: dict | None = None, node: str | None = None) -> Any:
        return build_params(self.params, values or {}, node=node)

    # --- the Python API: a registered stage is a function over a table ---
    def __call__(self, data, **params):
        """Run this stage on a `pyarrow.Table` or `datasets.Dataset`; return the kept (and added) rows."""
        return self.run(data, **params).output(like=data)

    def run(self, data, **params) -> Outcome:
        """Like calling the stage, but return the full Outcome: kept, rejected (with reasons) and added rows."""
        from dataprep.runner import run_in_memory
        return run_in_memory(self, _as_table(data), self.make_params(params))


def _as_table(data) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if hasattr(data, "data") and hasattr(data.data, "table"):  # datasets.Dataset, without importing datasets
        # after select/filter/sort a Dataset is its full table plus an indices mapping: apply it
        return data.with_format("arrow")[:] if getattr(data, "_indices", None) is not None else data.data.table
    raise TypeError(f"expected a pyarrow.Table or datasets.Dataset, got {type(data).__name__}")


_REGISTRY: dict[str, Stage] = {}


def stage(name: str, version: int, kind: str, params: type = NoParams,
          consumes: tuple[str, ...] = ("cls", "bio", "parallel"), produces=SAME_AS_INPUT,
          assigns_splits: bool = False, check_totals: Callable[[dict, Any, str], dict] | None = None,
          reads_splits: bool = False):
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
                     assigns_splits, check_totals, reads_splits)
        _REGISTRY[name] = spec
        return spec
    return register


def get(name: str) -> Stage:
    _load_builtin_stages()
    return _REGISTRY[name]


def all_stages() -> dict[str, Stage]:
    _load_builtin_stages()
    return dict(sorted(_REGISTRY.items()))


def _load_builtin_stages() -> None:
    import dataprep.io  # noqa: F401  (registers the readers)
    import dataprep.models  # noqa: F401  (registers the model builders; heavy imports stay inside them)
    import dataprep.stages  # noqa: F401  (registers the stages)
    import dataprep.train  # noqa: F401  (registers train_lora)


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
