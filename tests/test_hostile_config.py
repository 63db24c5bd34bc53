"""Hostile or careless configs: each fails before data moves, in one line naming the YAML node and key, in bounded
time and memory, and never with a traceback."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from testkit import CLI, cli_env, write_jsonl

from dataprep.cli import main
from dataprep.dag import load_pipeline, parse_pipeline
from dataprep.errors import ConfigError

NAME_RULE = "1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit, no '..'"
RAW = "  raw: {uses: read_jsonl, with: {path: in.jsonl}}\n"


@pytest.fixture
def data(workdir) -> Path:
    write_jsonl(workdir / "in.jsonl", [{"text": "good movie", "label": "pos"}, {"text": "bad", "label": "neg"}])
    (workdir / "par.tsv").write_text("hello\tworld\nfoo\tbar\n")
    return workdir


def yaml_error(data: Path, text: str) -> str:
    """The one-line message load_pipeline raises for a pipeline file holding `text`."""
    (data / "p.yaml").write_text(text)
    with pytest.raises(ConfigError) as e:
        load_pipeline(data / "p.yaml")
    message = str(e.value)
    assert "\n" not in message, message
    return message


def dict_error(nodes: dict, **top) -> str:
    """The message parse_pipeline raises for a pipeline given as Python values."""
    with pytest.raises(ConfigError) as e:
        parse_pipeline({"name": "p", "imports": ["stages_for_tests"], **top, "nodes": nodes})
    return str(e.value)


# --- names that would leave the cache root ---

@pytest.mark.parametrize("name", ["..", "../../x", "/abs", "a/b", ".hidden", "a..b", "x" * 65, ""])
def test_a_pipeline_name_that_is_not_a_plain_name_is_rejected(data, name):
    text = f"name: {name!r}\nnodes:\n{RAW}"
    assert yaml_error(data, text) == f"name: {name!r} is not a valid pipeline name ({NAME_RULE})"


def test_a_pipeline_name_must_be_a_string(data):
    assert yaml_error(data, f"name: 5\nnodes:\n{RAW}") == "name: expected a string, got 5"


def test_a_file_name_that_is_no_valid_pipeline_name_asks_for_name(data):
    (data / "my pipe.yaml").write_text(f"nodes:\n{RAW}")
    with pytest.raises(ConfigError) as e:
        load_pipeline(data / "my pipe.yaml")
    assert str(e.value) == (f"name: the file name gives the pipeline name 'my pipe', which is not valid "
                            f"({NAME_RULE}); set 'name:'")


@pytest.mark.parametrize("node", ["../x", "/abs", "a/b", "..", "-x"])
def test_a_node_name_that_is_not_a_plain_name_is_rejected(data, node):
    message = yaml_error(data, f"name: p\nnodes:\n  {node!r}: {{uses: read_jsonl, with: {{path: in.jsonl}}}}\n")
    assert message == f"nodes: {node!r} is not a valid node name ({NAME_RULE})"


def test_an_integer_node_name_is_rejected(data):
    message = yaml_error(data, "name: p\nnodes:\n  1: {uses: read_jsonl, with: {path: in.jsonl}}\n")
    assert message == "nodes: node names are strings, got int 1 (quote it)"


def test_a_node_named_like_a_cache_file_is_an_ordinary_node(data):
    """Entries live at <node>/<16-hex key>/, so no node name can collide with a manifest or a lock file."""
    (data / "p.yaml").write_text("name: p\nnodes:\n  manifest.json: {uses: read_jsonl, with: {path: in.jsonl}}\n")
    result = CliRunner().invoke(main, ["run", str(data / "p.yaml"), "--cache-dir", "c"])
    assert result.exit_code == 0, result.output
    assert list((data / "c" / "p" / "manifest.json").glob("*/manifest.json"))


# --- YAML that explodes, or that does not say what it seems to ---

def bomb(levels: int = 9) -> str:
    """A flow value of 9 items whose every level is 9 copies of the one below (the first copy defines the anchor,
    8 aliases repeat it): 9**10 items from a 1 kB value."""
    value = "[" + ", ".join(["x"] * 9) + "]"
    for i in range(levels):
        value = f"[&a{i} {value}, " + ", ".join([f"*a{i}"] * 8) + "]"
    return value


@pytest.mark.parametrize("place, where", [
    (f"name: {bomb()}\nnodes:\n" + RAW, "name"),
    ("name: p\nnodes:\n" + RAW + f"  n: {{uses: normalize, input: raw, with: {{label_map: {{1: {bomb()}}}}}}}\n",
     "nodes.n.with.label_map"),
    ("name: p\nnodes:\n" + RAW + f"  r: {{uses: rebalance, input: raw, with: {{strategy: {bomb()}}}}}\n",
     "nodes.r.with.strategy"),
    ("name: p\nnodes:\n" + RAW + f"  t: {{uses: train_lora, input: raw, with: {{target_modules: {bomb()}}}}}\n",
     "nodes.t.with.target_modules"),
])
def test_a_billion_laughs_file_fails_fast(data, place, where):
    started = time.perf_counter()
    (data / "p.yaml").write_text(place)
    with pytest.raises(ConfigError) as e:
        load_pipeline(data / "p.yaml")
    assert time.perf_counter() - started < 1.0
    assert str(e.value).startswith(f"{where}: the YAML expands to more than 100000 values through its aliases")


def test_a_small_alias_is_fine(data):
    """Anchors for shared settings are ordinary YAML: only the expanded size is limited."""
    (data / "p.yaml").write_text("name: p\nimports: [stages_for_tests]\nnodes:\n" + RAW +
                                 "  a: {uses: t_min_len, input: raw, with: &common {min_len: 4}}\n"
                                 "  b: {uses: t_min_len, input: raw, with: *common}\n")
    assert load_pipeline(data / "p.yaml").nodes["b"].params.min_len == 4


def test_error_messages_quote_huge_values_briefly(data):
    """The same explosion built in Python (no YAML limit applies): the message is still ~80 characters."""
    huge: list = ["x"] * 9
    for _ in range(8):
        huge = [huge] * 9
    started = time.perf_counter()
    message = dict_error({"raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
                          "n": {"uses": "normalize", "input": "raw", "with": {"label_map": {1: huge}}}})
    assert time.perf_counter() - started < 1.0
    assert message.startswith("nodes.n.with.label_map: expected dict[str | int, str] or null, got {1: [[[")
    assert len(message) < 200


def test_duplicate_node_names_are_an_error_with_both_lines(data):
    message = yaml_error(data, "name: p\nnodes:\n" + RAW + "  raw: {uses: read_jsonl, with: {path: x.jsonl}}\n")
    assert message == "nodes.raw: duplicate key 'raw' (lines 3 and 4)"


def test_duplicate_keys_anywhere_are_an_error(data):
    message = yaml_error(data, "name: p\nnodes:\n  raw:\n    uses: read_jsonl\n    with: {path: in.jsonl, "
                               "path: x.jsonl}\n")
    assert message == "nodes.raw.with.path: duplicate key 'path' (lines 5 and 5)"
    message = yaml_error(data, f"name: p\nnodes:\n{RAW}name: q\n")
    assert message == "name: duplicate key 'name' (lines 1 and 4)"


def test_invalid_utf8_names_the_line(data):
    (data / "p.yaml").write_bytes(b"name: p\nnodes:\n  raw: {uses: read_jsonl, with: {path: in\xff.jsonl}}\n")
    with pytest.raises(ConfigError) as e:
        load_pipeline(data / "p.yaml")
    assert str(e.value) == f"{data / 'p.yaml'}: not valid UTF-8 (byte 0xff on line 3)"


def test_a_control_character_names_the_line(data):
    message = yaml_error(data, f"name: p\nnodes:\n{RAW}defaults: {{seed: \x07}}\n")
    assert message == (f"{data / 'p.yaml'}: not valid YAML: unacceptable character #x0007: special characters are "
                       "not allowed (line 4)")


def test_deep_nesting_is_an_error_not_a_recursion_error(data):
    deep = "[" * 40 + "]" * 40
    assert yaml_error(data, f"name: p\nnodes:\n{RAW}defaults: {{seed: {deep}}}\n").startswith(
        "defaults.seed: nested more than 32 levels deep")
    very_deep = "[" * 1500 + "]" * 1500
    assert yaml_error(data, f"name: p\nnodes: {very_deep}\n").endswith("not valid YAML: nested too deeply")


def test_an_integer_too_long_for_python_is_a_yaml_error(data):
    message = yaml_error(data, f"name: p\nnodes:\n{RAW}defaults: {{seed: {'9' * 5000}}}\n")
    assert message.startswith(f"{data / 'p.yaml'}: not valid YAML: ")


@pytest.mark.parametrize("text, kind", [("- a\n- b\n", "list"), ("just a string\n", "str"), ("", "an empty file")])
def test_a_pipeline_that_is_not_a_mapping(data, text, kind):
    assert yaml_error(data, text) == f"a pipeline is a mapping with 'nodes', got {kind}"


# --- nodes that do not say what the runner needs ---

def test_uses_must_be_a_stage_name(data):
    message = yaml_error(data, "name: p\nnodes:\n  raw: {uses: [read_jsonl], with: {path: in.jsonl}}\n")
    assert message == "nodes.raw.uses: expected a stage name, got ['read_jsonl']"


def test_an_input_listed_twice_is_rejected(data):
    message = dict_error({"raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
                          "b": {"uses": "t_identity", "input": ["raw", "raw"]}})
    assert message == "nodes.b.input: 'raw' is listed twice (each input is read once)"


def test_exact_dedup_does_not_take_parallel_rows(data):
    message = dict_error({"par": {"uses": "read_parallel", "with": {"path": "par.tsv"}},
                          "d": {"uses": "exact_dedup", "input": "par"}})
    assert message == "nodes.d.input: exact_dedup takes cls/bio rows, but 'par' gives 'parallel' rows"


@pytest.mark.parametrize("value, kind", [(5, "int"), ([], "list"), ("", "str"), (0, "int")])
def test_with_must_be_a_mapping(data, value, kind):
    message = dict_error({"raw": {"uses": "read_jsonl", "with": value}})
    assert message == f"nodes.raw.with: 'with' must be a mapping, got {kind}"


def test_a_param_beyond_64_bits_is_rejected(data):
    message = dict_error({"raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
                          "b": {"uses": "t_min_len", "input": "raw", "with": {"min_len": 10 ** 30}}})
    assert message == "nodes.b.with.min_len: 1000000000000000000000000000000 is out of range (integers are " \
                      "limited to 64 bits)"


def test_a_default_no_node_takes_is_a_typo(data):
    message = dict_error({"raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}}}, defaults={"sed": 13})
    assert message == "defaults.sed: no node of this pipeline has a parameter 'sed'"


def test_a_path_with_a_nul_byte_is_not_found(data):
    message = dict_error({"raw": {"uses": "read_jsonl", "with": {"path": "in\0.jsonl"}}})
    assert message == "nodes.raw.with.path: file not found: 'in\\x00.jsonl'"


# --- imports ---

def test_imports_find_a_module_beside_the_pipeline_file_from_the_cli(data):
    """No PYTHONPATH=.: the pipeline's directory goes on sys.path (first) while its imports run."""
    (data / "pipes").mkdir()
    (data / "pipes" / "beside_pipeline_stages.py").write_text(
        "from dataprep.registry import stage\n"
        "@stage('t_beside', version=1, kind='map')\n"
        "def beside(table, p):\n"
        "    return table\n")
    (data / "pipes" / "p.yaml").write_text("name: p\nimports: [beside_pipeline_stages]\nnodes:\n"
                                           "  raw: {uses: read_jsonl, with: {path: in.jsonl}}\n"
                                           "  b: {uses: t_beside, input: raw}\n")
    env = {k: v for k, v in cli_env().items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)  # the package only, not tests/ or pipes/
    result = subprocess.run([*CLI, "plan", "pipes/p.yaml", "--cache-dir", "c"], cwd=data, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "t_beside" in result.stdout


def test_imports_leave_sys_path_as_they_found_it(data):
    (data / "sub").mkdir()
    (data / "sub" / "cwd_or_beside_stages.py").write_text("X = 1\n")
    (data / "sub" / "p.yaml").write_text(f"name: p\nimports: [cwd_or_beside_stages]\nnodes:\n"
                                         f"  raw: {{uses: read_jsonl, with: {{path: {data / 'in.jsonl'}}}}}\n")
    before = list(sys.path)
    load_pipeline(data / "sub" / "p.yaml")
    assert sys.path == before
    assert "cwd_or_beside_stages" in sys.modules


def test_a_module_that_fails_to_import_names_imports(data):
    (data / "broken_stages_mod.py").write_text("raise RuntimeError('boom')\n")
    message = yaml_error(data, f"name: p\nimports: [broken_stages_mod]\nnodes:\n{RAW}")
    assert message == "imports: cannot import 'broken_stages_mod': RuntimeError: boom"
    assert yaml_error(data, f"name: p\nimports: ['']\nnodes:\n{RAW}").startswith("imports: cannot import ''")


# --- the command line ---

def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_stage_output_in_a_missing_directory_fails_before_the_job_runs(data):
    result = invoke("stage", "t_upper", "in.jsonl", "-o", "missing_dir/out.parquet")
    assert result.exit_code == 1
    assert result.output == "Error: output directory 'missing_dir' does not exist\n"
    assert not (data / "missing_dir").exists()


def test_read_delimiter_tab_reaches_the_csv_reader(data):
    (data / "in.csv").write_text("text\tlabel\ngood film\tpos\nbad, really\tneg\n")
    result = invoke("stage", "read_csv", "in.csv", "-o", "out.jsonl", "--read", "delimiter=\t")
    assert result.exit_code == 0, result.output
    assert "2 records read, 2 rows written" in result.output
    assert [json.loads(x)["text"] for x in (data / "out.jsonl").read_text().splitlines()] == ["good film",
                                                                                            "bad, really"]


def test_a_set_value_that_is_not_yaml_is_the_plain_string(data):
    result = invoke("stage", "t_upper", "in.jsonl", "-o", "out.jsonl", "--set", "suffix=: [!")
    assert result.exit_code == 0, result.output
    assert json.loads((data / "out.jsonl").read_text().splitlines()[0])["text"] == "GOOD MOVIE: [!"


def test_cache_dir_that_is_a_file_is_one_line(data):
    (data / "f.txt").write_text("x")
    (data / "p.yaml").write_text(f"name: p\nnodes:\n{RAW}")
    for command in ("run", "plan", "show", "clean"):
        result = invoke(command, "p.yaml", "--cache-dir", "f.txt")
        assert result.exit_code == 1, command
        assert result.output == "Error: --cache-dir 'f.txt' is not a directory\n", command


def test_cli_prints_a_yaml_error_once_with_the_file_name(data):
    (data / "p.yaml").write_text("name: p\nnodes:\n  raw: {uses: read_jsonl\n")
    result = invoke("plan", "p.yaml")
    assert result.exit_code == 1
    assert result.output.startswith("Error: p.yaml: not valid YAML: ")
    assert result.output.count("p.yaml") == 1 and result.output.count("\n") == 1
