"""YAML -> validated DAG: every configuration error is raised before data moves and names `nodes.<node>.<key>`."""
from __future__ import annotations

import sys

import pytest
from testkit import write_jsonl

from dataprep.catalog import all_stages
from dataprep.dag import load_pipeline, parse_pipeline
from dataprep.errors import ConfigError


@pytest.fixture
def data(workdir):
    write_jsonl(workdir / "in.jsonl", [{"text": "a", "label": "x"}])
    return workdir


RAW = {"uses": "read_jsonl", "with": {"path": "in.jsonl"}}


def config_error(nodes: dict, **top) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        parse_pipeline({"name": "p", "imports": ["stages_for_tests"], **top, "nodes": nodes})
    return e.value


def assert_points_at(err: ConfigError, node: str, key: str) -> None:
    assert (err.node, err.key) == (node, key)
    assert str(err).startswith(f"nodes.{node}.{key}: "), str(err)


def test_a_valid_pipeline_parses_in_topological_order(data):
    pipeline = parse_pipeline({"name": "p", "nodes": {
        "b": {"uses": "t_upper", "input": "a"},
        "a": {"uses": "t_identity", "input": "raw"},
        "raw": RAW,
    }})
    assert list(pipeline.nodes) == ["raw", "a", "b"]
    assert pipeline.nodes["b"].kind == "cls"
    assert pipeline.nodes["b"].inputs == ("a",)


def test_unknown_stage(data):
    err = config_error({"raw": RAW, "x": {"uses": "no_such_stage", "input": "raw"}})
    assert_points_at(err, "x", "uses")
    assert "unknown stage 'no_such_stage'" in str(err)


def test_missing_uses(data):
    assert_points_at(config_error({"raw": RAW, "x": {"input": "raw"}}), "x", "uses")


def test_unknown_param(data):
    err = config_error({"raw": RAW, "kept": {"uses": "t_min_len", "input": "raw", "with": {"min_lenght": 3}}})
    assert_points_at(err, "kept", "with.min_lenght")
    assert "unknown parameter 'min_lenght'" in str(err) and "min_len" in str(err)


def test_mistyped_param(data):
    err = config_error({"raw": RAW, "kept": {"uses": "t_min_len", "input": "raw", "with": {"min_len": "3"}}})
    assert_points_at(err, "kept", "with.min_len")
    assert "expected int, got '3'" in str(err)


def test_mistyped_reader_param(data):
    err = config_error({"raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl", "batch_rows": True}}})
    assert_points_at(err, "raw", "with.batch_rows")


def test_cycle_shows_the_cycle(data):
    err = config_error({
        "raw": RAW,
        "a": {"uses": "t_identity", "input": ["raw", "b"]},
        "b": {"uses": "t_identity", "input": "a"},
    })
    assert err.key == "input" and err.node in ("a", "b")
    assert str(err).startswith(f"nodes.{err.node}.input: cycle: ")
    assert "a -> b -> a" in str(err) or "b -> a -> b" in str(err)


def test_self_loop_is_a_cycle(data):
    err = config_error({"raw": RAW, "a": {"uses": "t_identity", "input": ["raw", "a"]}})
    assert_points_at(err, "a", "input")
    assert "cycle: a -> a" in str(err)


def test_missing_input_node(data):
    err = config_error({"raw": RAW, "a": {"uses": "t_identity", "input": "rwa"}})
    assert_points_at(err, "a", "input")
    assert "input 'rwa' is not a node of this pipeline" in str(err)


def test_input_must_be_names(data):
    assert_points_at(config_error({"raw": RAW, "a": {"uses": "t_identity", "input": {"x": 1}}}), "a", "input")


def test_missing_source_file(data):
    err = config_error({"raw": {"uses": "read_jsonl", "with": {"path": "nope.jsonl"}}})
    assert_points_at(err, "raw", "with.path")
    assert "file not found: 'nope.jsonl'" in str(err)


def test_source_without_path(data):
    err = config_error({"raw": {"uses": "read_jsonl"}})
    assert_points_at(err, "raw", "with.path")
    assert "missing 'path'" in str(err)


def test_schema_kind_mismatch_on_an_edge(data):
    err = config_error({"raw": RAW, "tag": {"uses": "t_bio_only", "input": "raw"}})
    assert_points_at(err, "tag", "input")
    assert "t_bio_only takes bio rows, but 'raw' gives 'cls' rows" in str(err)


def test_unknown_node_key(data):
    err = config_error({"raw": {**RAW, "inptu": "x"}})
    assert_points_at(err, "raw", "inptu")
    assert "unknown key 'inptu'" in str(err)


def test_unknown_top_level_key(data):
    with pytest.raises(ConfigError, match=r"^node: unknown key 'node'"):
        parse_pipeline({"name": "p", "node": {}, "nodes": {"raw": RAW}})


def test_source_given_an_input(data):
    err = config_error({"raw": RAW, "raw2": {**RAW, "input": "raw"}})
    assert_points_at(err, "raw2", "input")
    assert "takes no 'input'" in str(err)


def test_non_source_without_input(data):
    err = config_error({"raw": RAW, "up": {"uses": "t_upper"}})
    assert_points_at(err, "up", "input")
    assert "needs an 'input' node" in str(err)


def test_empty_nodes():
    with pytest.raises(ConfigError, match=r"^nodes: 'nodes' must be a non-empty mapping"):
        parse_pipeline({"name": "p", "nodes": {}})


def test_bad_yaml_names_the_file_and_line(workdir):
    (workdir / "bad.yaml").write_text("name: p\nnodes:\n  raw: {uses: read_jsonl\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML") as e:
        load_pipeline(workdir / "bad.yaml")
    assert "line" in str(e.value)


def test_missing_pipeline_file(workdir):
    with pytest.raises(ConfigError, match="pipeline file not found"):
        load_pipeline(workdir / "nope.yaml")


def test_yaml_that_is_not_a_mapping(workdir):
    (workdir / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="a pipeline is a mapping"):
        load_pipeline(workdir / "list.yaml")


def test_load_pipeline_takes_its_name_from_the_file_by_default(data):
    (data / "my_pipe.yaml").write_text("nodes:\n  raw: {uses: read_jsonl, with: {path: in.jsonl}}\n")
    pipeline = load_pipeline(data / "my_pipe.yaml")
    assert pipeline.name == "my_pipe"
    assert pipeline.source == data / "my_pipe.yaml"


def test_defaults_seed_fills_a_seed_param(data):
    pipeline = parse_pipeline({"name": "p", "defaults": {"seed": 13}, "nodes": {
        "raw": RAW,
        "a": {"uses": "t_seeded", "input": "raw"},
        "b": {"uses": "t_seeded", "input": "raw", "with": {"seed": 7}},
    }})
    assert pipeline.nodes["a"].params.seed == 13
    assert pipeline.nodes["b"].params.seed == 7      # the node's own value wins
    assert not hasattr(pipeline.nodes["raw"].params, "seed")  # stages without a seed are left alone


def test_defaults_are_type_checked_like_node_params(data):
    err = config_error({"raw": RAW, "a": {"uses": "t_seeded", "input": "raw"}}, defaults={"seed": "x"})
    assert_points_at(err, "a", "with.seed")


def test_imports_load_a_module_of_custom_stages(data, monkeypatch):
    (data / "my_custom_stages_for_dag_test.py").write_text(
        "from dataprep.registry import stage\n"
        "@stage('t_custom_from_import', version=1, kind='map')\n"
        "def custom(table, p):\n"
        "    return table\n")
    monkeypatch.syspath_prepend(str(data))
    assert "t_custom_from_import" not in all_stages()
    pipeline = parse_pipeline({"name": "p", "imports": ["my_custom_stages_for_dag_test"], "nodes": {
        "raw": RAW, "c": {"uses": "t_custom_from_import", "input": "raw"}}})
    assert pipeline.nodes["c"].stage.name == "t_custom_from_import"
    assert "my_custom_stages_for_dag_test" in sys.modules


def test_unimportable_module(data):
    with pytest.raises(ConfigError, match=r"^imports: cannot import 'no_such_module_xyz'"):
        parse_pipeline({"name": "p", "imports": ["no_such_module_xyz"], "nodes": {"raw": RAW}})


def test_imports_must_be_a_list(data):
    with pytest.raises(ConfigError, match=r"^imports: 'imports' must be a list"):
        parse_pipeline({"name": "p", "imports": "stages_for_tests", "nodes": {"raw": RAW}})


def test_multi_input_kinds_must_agree_and_be_kept_in_order(data):
    write_jsonl(data / "in2.jsonl", [{"text": "b", "label": "y"}])
    pipeline = parse_pipeline({"name": "p", "nodes": {
        "r1": RAW, "r2": {"uses": "read_jsonl", "with": {"path": "in2.jsonl"}},
        "both": {"uses": "t_identity", "input": ["r2", "r1"]}}})
    assert pipeline.nodes["both"].inputs == ("r2", "r1")


def test_ancestors_and_descendants(data):
    pipeline = parse_pipeline({"name": "p", "nodes": {
        "raw": RAW,
        "a": {"uses": "t_identity", "input": "raw"},
        "b": {"uses": "t_identity", "input": "a"},
        "c": {"uses": "t_identity", "input": "raw"},
        "d": {"uses": "t_identity", "input": ["b", "c"]},
    }})
    assert pipeline.ancestors("b") == {"b", "a", "raw"}
    assert pipeline.ancestors("d") == {"d", "b", "c", "a", "raw"}
    assert pipeline.ancestors("raw") == {"raw"}
    assert pipeline.descendants("a") == {"a", "b", "d"}
    assert pipeline.descendants("raw") == {"raw", "a", "b", "c", "d"}
    assert pipeline.descendants("d") == {"d"}
