"""Stage registration, params built from YAML values, and the Python API (a stage is a function over a table)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pytest
from testkit import cls_table

import dataprep
from dataprep.catalog import get
from dataprep.errors import ConfigError, LedgerError
from dataprep.io.csv import CsvParams
from dataprep.registry import build_params, key_params, param, params_help, stage


@dataclass(frozen=True)
class P:
    n: int = param(1, "a count")
    ratio: float = param(0.5, "a fraction")
    flag: bool = param(False, "a switch")
    names: list[str] = param(factory=list, help="some names")  # noqa: RUF009  (param() is a field())
    mode: Literal["fast", "slow"] = param("fast", "how")
    maybe: str | None = param(None, "optional text")
    workers: int = param(4, "parallelism", knob=True)


# --- building params ---

def test_defaults_when_no_values():
    p = build_params(P, {})
    assert (p.n, p.ratio, p.flag, p.names, p.mode, p.maybe) == (1, 0.5, False, [], "fast", None)


def test_unknown_key_names_node_and_key():
    with pytest.raises(ConfigError) as e:
        build_params(P, {"nn": 2}, node="clean")
    assert (e.value.node, e.value.key) == ("clean", "with.nn")
    assert str(e.value).startswith("nodes.clean.with.nn: unknown parameter 'nn'")
    assert "known: n, ratio" in str(e.value)


@pytest.mark.parametrize("key, value, expected", [
    ("n", "3", "expected int"),          # str for int
    ("n", True, "expected int"),         # bool is not an int here
    ("n", 1.5, "expected int"),
    ("ratio", "0.1", "expected float"),
    ("flag", 1, "expected bool"),
    ("names", "a,b", "expected list"),   # a non-list for a list
    ("names", ["a", 2], "expected list"),
    ("maybe", 3, "expected str or null"),
])
def test_wrong_type_is_rejected_by_key(key, value, expected):
    with pytest.raises(ConfigError, match=rf"^nodes\.n1\.with\.{key}: {expected}") as e:
        build_params(P, {key: value}, node="n1")
    assert e.value.key == f"with.{key}"


def test_int_is_accepted_for_float_and_none_for_optional():
    p = build_params(P, {"ratio": 1, "maybe": None, "names": ("x",)})
    assert p.ratio == 1 and p.maybe is None and list(p.names) == ["x"]


def test_literal_accepts_listed_values_only():
    assert build_params(P, {"mode": "slow"}).mode == "slow"
    with pytest.raises(ConfigError, match=r"with\.mode: expected one of 'fast', 'slow', got 'medium'"):
        build_params(P, {"mode": "medium"}, node="n")


def test_literal_in_a_real_stage():
    assert build_params(CsvParams, {"path": "x.csv", "quoting": "none"}).quoting == "none"
    with pytest.raises(ConfigError, match="with.quoting"):
        build_params(CsvParams, {"path": "x.csv", "quoting": "all"}, node="raw")


def test_post_init_check_becomes_config_error_on_with():
    with pytest.raises(ConfigError, match=r"^nodes\.raw\.with: delimiter must be one character"):
        build_params(CsvParams, {"delimiter": ";;"}, node="raw")


def test_with_must_be_a_mapping():
    with pytest.raises(ConfigError, match=r"nodes\.raw\.with: 'with' must be a mapping"):
        build_params(P, ["n"], node="raw")


def test_knob_params_are_left_out_of_key_params():
    keyed = key_params(build_params(P, {"workers": 64}))
    assert "workers" not in keyed
    assert set(keyed) == {"n", "ratio", "flag", "names", "mode", "maybe"}


def test_batch_rows_of_readers_is_in_the_key():
    """It decides the row groups, so the bytes, of the reader's parts."""
    assert "batch_rows" in key_params(build_params(CsvParams, {"path": "x"}))


def test_params_help_lists_type_default_and_help():
    rows = {name: (typ, default, help_) for name, typ, default, help_ in params_help(P)}
    assert rows["n"] == ("int", 1, "a count")
    assert rows["mode"] == ("one of 'fast', 'slow'", "fast", "how")
    assert rows["names"][1] == []


# --- registration ---

def test_registering_a_name_twice_raises():
    with pytest.raises(ValueError, match="registered twice"):
        stage("t_upper", version=1, kind="map")(lambda t, p: t)


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="kind must be one of"):
        stage("t_never_registered_kind", version=1, kind="reduce")


def test_params_must_be_a_frozen_dataclass():
    @dataclass
    class Mutable:
        x: int = 1

    with pytest.raises(TypeError, match="frozen dataclass"):
        stage("t_never_registered_params", version=1, kind="map", params=Mutable)


def test_registered_stages_are_attributes_of_the_package():
    assert dataprep.read_jsonl is get("read_jsonl")
    assert dataprep.t_upper.kind == "map"
    with pytest.raises(AttributeError):
        dataprep.no_such_stage_anywhere  # noqa: B018


# --- the Python API ---

def test_calling_a_stage_on_a_table_returns_a_table():
    out = get("t_upper")(cls_table(["ab", "cd"]), suffix="!")
    assert isinstance(out, pa.Table)
    assert out.column("text").to_pylist() == ["AB!", "CD!"]


def test_calling_a_filter_returns_only_kept_rows():
    out = get("t_min_len")(cls_table(["abc", "x", "long"]), min_len=3)
    assert out.column("text").to_pylist() == ["abc", "long"]


def test_run_returns_rejects_with_reasons_and_records():
    outcome = get("t_min_len").run(cls_table(["abc", "x", "y"], ids=["a", "b", "c"]), min_len=2)
    assert outcome.kept.column("id").to_pylist() == ["a"]
    assert outcome.rejected.column("id").to_pylist() == ["b", "c"]
    assert outcome.rejected.column("reason").to_pylist() == ["too_short:2", "too_short:2"]
    assert json.loads(outcome.rejected.column("record")[0].as_py())["text"] == "x"


def test_python_api_rejects_unknown_params():
    with pytest.raises(ConfigError, match="unknown parameter 'min_length'"):
        get("t_min_len")(cls_table(["abc"]), min_length=2)


def test_python_api_checks_conservation():
    with pytest.raises(LedgerError, match="rows were lost or invented"):
        get("t_lose_row")(cls_table(["a", "b"]))


def test_global_stage_via_python_api_returns_kept_and_added():
    table = cls_table(["a", "b", "c"], labels=["keep", "drop", "keep"])
    outcome = get("t_oversample").run(table, copies=1)
    assert outcome.kept.column("text").to_pylist() == ["a", "c"]
    assert outcome.rejected.column("reason").to_pylist() == ["unwanted_label:drop"]
    assert outcome.added.column("parent_id").to_pylist() == ["t:1"]
    assert get("t_oversample")(table, copies=1).num_rows == 3


def test_source_stage_cannot_be_called_on_a_table():
    with pytest.raises(TypeError, match="reads files"):
        get("read_jsonl")(cls_table(["a"]))


def test_calling_on_something_else_is_a_type_error():
    with pytest.raises(TypeError, match="expected a pyarrow.Table or datasets.Dataset"):
        get("t_upper")([{"text": "a"}])


def test_calling_a_stage_on_a_dataset_returns_a_dataset():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset(cls_table(["abc", "x", "long"]))
    out = get("t_min_len")(ds, min_len=3)
    assert isinstance(out, datasets.Dataset)
    assert out["text"] == ["abc", "long"]


def test_dataset_with_an_indices_mapping_uses_only_the_selected_rows():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset(cls_table(["one", "two", "three", "four"]))
    picked = ds.select([3, 1])                     # keeps an indices mapping over the full table
    assert get("t_upper")(picked)["text"] == ["FOUR", "TWO"]
    filtered = ds.filter(lambda r: r["text"] != "two")
    assert get("t_upper")(filtered)["text"] == ["ONE", "THREE", "FOUR"]
