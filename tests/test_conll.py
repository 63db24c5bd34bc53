"""CoNLL column files (read_conll, write_conll) and NER JSON Lines (read_jsonl kind: bio)."""
from __future__ import annotations

import pyarrow as pa
import pytest
from testkit import write_jsonl

from dataprep.io import read_conll, read_jsonl, write_conll
from dataprep.schema import BIO


def read(stage, **params) -> tuple[pa.Table, list[tuple[str, str, str]]]:
    """Run a source stage: (rows, [(id, reason, record)])."""
    outcomes = list(stage.impl(stage.make_params(params)))
    kept = pa.concat_tables([o.kept for o in outcomes], promote_options="permissive")
    rejects = [(r["id"], r["reason"], r["record"]) for o in outcomes for r in o.rejected.to_pylist()]
    return kept, rejects


def sentences(table: pa.Table) -> list[tuple[str, list[str], list[str]]]:
    return list(zip(table.column("id").to_pylist(), table.column("tokens").to_pylist(),
                    table.column("tags").to_pylist()))


def conll(tmp_path, text: str | bytes, name: str = "ner.conll") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


# --- read_conll ---

def test_docstart_lines_are_skipped_and_blank_lines_break_sentences(tmp_path):
    path = conll(tmp_path, "-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects VBZ B-VP O\n\n"
                           "Peter NNP B-NP I-PER\n\n-DOCSTART- -X- -X- O\n\nLondon NNP B-NP I-LOC\n")
    table, rejects = read(read_conll, path=path, lang="en")
    assert rejects == []
    assert sentences(table) == [("ner.conll:3", ["EU", "rejects"], ["I-ORG", "O"]),
                                ("ner.conll:6", ["Peter"], ["I-PER"]),
                                ("ner.conll:10", ["London"], ["I-LOC"])]
    assert pa.schema(list(table.schema)[:len(BIO)]) == BIO
    assert table.column_names[len(BIO):] == ["meta_col1", "meta_col2"]  # POS and chunk tags, kept per token
    assert table.column("meta_col1").to_pylist() == [["NNP", "VBZ"], ["NNP"], ["NNP"]]
    assert set(table.column("lang").to_pylist()) == {"en"} and set(table.column("source").to_pylist()) == {
        "ner.conll"}


def test_a_docstart_without_a_blank_line_after_it_still_breaks(tmp_path):
    path = conll(tmp_path, "a O\n-DOCSTART- O\nb O\n")
    assert sentences(read(read_conll, path=path)[0]) == [("ner.conll:1", ["a"], ["O"]), ("ner.conll:3", ["b"], ["O"])]


def test_several_blank_lines_and_whitespace_only_lines_are_one_break(tmp_path):
    path = conll(tmp_path, "\n\na O\nb B-X\n\n\n  \t\n\nc I-Y\n\n\n")
    table, rejects = read(read_conll, path=path)
    assert rejects == []
    assert sentences(table) == [("ner.conll:3", ["a", "b"], ["O", "B-X"]), ("ner.conll:9", ["c"], ["I-Y"])]


def test_a_missing_final_newline_is_fine(tmp_path):
    path = conll(tmp_path, "a O\n\nb B-PER\nc I-PER")
    assert sentences(read(read_conll, path=path)[0]) == [("ner.conll:1", ["a"], ["O"]),
                                                         ("ner.conll:3", ["b", "c"], ["B-PER", "I-PER"])]


def test_crlf_line_ends(tmp_path):
    path = conll(tmp_path, "a O\r\nb B-PER\r\n\r\nc O\r\n")
    assert sentences(read(read_conll, path=path)[0]) == [("ner.conll:1", ["a", "b"], ["O", "B-PER"]),
                                                         ("ner.conll:4", ["c"], ["O"])]


def test_tab_and_space_separated_columns(tmp_path):
    spaces = conll(tmp_path, "EU  NNP\tB-ORG\nsays VBZ  O\n", "spaces.conll")
    assert sentences(read(read_conll, path=spaces)[0]) == [("spaces.conll:1", ["EU", "says"], ["B-ORG", "O"])]
    tabs = conll(tmp_path, "New York\tNNP\tB-LOC\ncity\tNN\tO\n", "tabs.conll")
    assert sentences(read(read_conll, path=tabs, delimiter="\t")[0]) == [
        ("tabs.conll:1", ["New York", "city"], ["B-LOC", "O"])]


def test_token_and_tag_columns_can_be_chosen(tmp_path):
    path = conll(tmp_path, "1 EU NNP B-ORG B-NP\n2 says VBZ O B-VP\n")
    table, _ = read(read_conll, path=path, token_col=1, tag_col=3)
    assert sentences(table) == [("ner.conll:1", ["EU", "says"], ["B-ORG", "O"])]
    table, _ = read(read_conll, path=path, token_col=2)  # tag_col -1: the last column
    assert sentences(table) == [("ner.conll:1", ["NNP", "VBZ"], ["B-NP", "B-VP"])]


def test_a_line_with_another_column_count_rejects_its_whole_sentence(tmp_path):
    text = "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-PER\nsaid VBD O\n\n" \
           "London NNP B-NP B-LOC\n"
    table, rejects = read(read_conll, path=conll(tmp_path, text))
    assert [s[0] for s in sentences(table)] == ["ner.conll:1", "ner.conll:8"]
    assert rejects == [("ner.conll:4", "bad_column_row:5",
                        "Peter NNP B-NP B-PER\nBlackburn NNP I-PER\nsaid VBD O")]


def test_the_column_count_can_be_given(tmp_path):
    path = conll(tmp_path, "a X O\n\nb O\n")
    table, rejects = read(read_conll, path=path, columns=2)
    assert sentences(table) == [("ner.conll:3", ["b"], ["O"])]
    assert [(i, r) for i, r, _ in rejects] == [("ner.conll:1", "bad_column_row:1")]


def test_an_invalid_utf8_line_rejects_its_sentence(tmp_path):
    path = conll(tmp_path, b"ok O\n\nbad\xff\xfe B-PER\nmore O\n\nfine O\n")
    table, rejects = read(read_conll, path=path)
    assert [s[0] for s in sentences(table)] == ["ner.conll:1", "ner.conll:6"]
    [(rid, reason, record)] = rejects
    assert rid == "ner.conll:3"
    assert reason.split(":")[0] == "invalid_utf8" and reason in ("invalid_utf8", "invalid_utf8:3")
    assert record == "bad\\xff\\xfe B-PER\nmore O"  # the raw bytes, escaped, not dropped


def test_an_invalid_utf8_first_line_rejects_only_its_own_sentence(tmp_path):
    # The file's column count comes from its first token line: a bad byte there must not make it 0.
    path = conll(tmp_path, b"bad\xff B-PER\n\ngood O\n")
    table, rejects = read(read_conll, path=path)
    assert [s[0] for s in sentences(table)] == ["ner.conll:3"]
    assert [i for i, _, _ in rejects] == ["ner.conll:1"]


def test_a_bom_is_not_part_of_the_first_token(tmp_path):
    path = conll(tmp_path, "\ufeffEU B-ORG\n")
    assert sentences(read(read_conll, path=path)[0]) == [("ner.conll:1", ["EU"], ["B-ORG"])]


def test_batches_keep_ids_and_lose_nothing(tmp_path):
    text = "".join(f"w{i} O\n\n" for i in range(10)) + "bad line here\n"
    outcomes = list(read_conll.impl(read_conll.make_params({"path": conll(tmp_path, text), "batch_rows": 3})))
    assert len(outcomes) >= 4
    ids = [i for o in outcomes for i in o.kept.column("id").to_pylist()]
    assert ids == [f"ner.conll:{2 * i + 1}" for i in range(10)]
    assert [r["id"] for o in outcomes for r in o.rejected.to_pylist()] == ["ner.conll:21"]


# --- write_conll ---

def test_write_then_read_round_trips(tmp_path):
    table = pa.table({"id": ["a", "b", "c"], "tokens": [["EU", "rejects", "German"], ["Peter"], ["新", "华", "社"]],
                      "tags": [["B-ORG", "O", "B-MISC"], ["B-PER"], ["B-ORG", "I-ORG", "I-ORG"]],
                      "lang": ["en", "en", "zh"], "source": ["x"] * 3}, schema=BIO)
    path = tmp_path / "out.conll"
    write_conll(table, str(path))
    assert path.read_text(encoding="utf-8").startswith("EU\tB-ORG\nrejects\tO\nGerman\tB-MISC\n\nPeter\tB-PER\n\n")
    back, rejects = read(read_conll, path=str(path))
    assert rejects == []
    assert back.column("tokens").to_pylist() == table.column("tokens").to_pylist()
    assert back.column("tags").to_pylist() == table.column("tags").to_pylist()
    assert back.column("id").to_pylist() == ["out.conll:1", "out.conll:5", "out.conll:7"]


# --- read_jsonl kind: bio ---

def test_jsonl_bio_reads_token_and_tag_lists(tmp_path):
    path = write_jsonl(tmp_path / "ner.jsonl", [
        {"tokens": ["王", "伟"], "tags": ["B-PER", "I-PER"]},
        "",
        {"tokens": ["在", 1], "tags": ["O", "O"], "lang": "zh"},
        {"tokens": [], "tags": []},
    ])
    table, rejects = read(read_jsonl, path=str(path), kind="bio", lang="zh")
    assert [(i, r) for i, r, _ in rejects] == [("ner.jsonl:3", "bad_type:tokens:item:number")]  # never "1"
    assert table.schema == BIO
    assert sentences(table) == [("ner.jsonl:1", ["王", "伟"], ["B-PER", "I-PER"]),
                                ("ner.jsonl:4", [], [])]  # empty: to_bio2 judges it (empty_tokens)


def test_jsonl_bio_field_names_can_be_chosen(tmp_path):
    path = write_jsonl(tmp_path / "ner.jsonl", [{"words": ["a"], "ner": ["O"]}])
    table, rejects = read(read_jsonl, path=str(path), kind="bio", tokens_field="words", tags_field="ner")
    assert rejects == [] and sentences(table) == [("ner.jsonl:1", ["a"], ["O"])]


def test_jsonl_bio_rejects_bad_records_with_reasons(tmp_path):
    lines = [
        {"tokens": ["a"], "tags": "O"},
        {"tokens": "a b", "tags": ["O", "O"]},
        {"tags": ["O"]},
        {"tokens": ["a"]},
        {"tokens": None, "tags": ["O"]},
        '{"tokens": ["a"], "tags": ["O"',
        '["a"]',
        b'{"tokens": ["\xff"], "tags": ["O"]}',
        {"tokens": ["ok"], "tags": ["O"]},
    ]
    path = write_jsonl(tmp_path / "ner.jsonl", lines)
    table, rejects = read(read_jsonl, path=str(path), kind="bio")
    assert sentences(table) == [("ner.jsonl:9", ["ok"], ["O"])]
    assert [(i, r) for i, r, _ in rejects] == [
        ("ner.jsonl:1", "not_a_list:tags"), ("ner.jsonl:2", "not_a_list:tokens"),
        ("ner.jsonl:3", "missing_field:tokens"), ("ner.jsonl:4", "missing_field:tags"),
        ("ner.jsonl:5", "not_a_list:tokens"), ("ner.jsonl:6", "malformed_json"), ("ner.jsonl:7", "not_an_object"),
        ("ner.jsonl:8", "invalid_utf8")]
    assert rejects[0][2] == '{"tokens": ["a"], "tags": "O"}'  # the raw line is kept


@pytest.mark.parametrize("batch_rows", [1, 2, 50_000])
def test_jsonl_bio_batches_lose_nothing(tmp_path, batch_rows):
    lines = [{"tokens": [f"w{i}"], "tags": ["O"]} if i % 3 else "{bad" for i in range(10)]
    path = write_jsonl(tmp_path / "ner.jsonl", lines)
    table, rejects = read(read_jsonl, path=str(path), kind="bio", batch_rows=batch_rows)
    assert table.column("id").to_pylist() == [f"ner.jsonl:{i + 1}" for i in range(10) if i % 3]
    assert [i for i, _, _ in rejects] == ["ner.jsonl:1", "ner.jsonl:4", "ner.jsonl:7", "ner.jsonl:10"]


# --- splits and other columns ---

def test_split_as_puts_every_sentence_of_a_file_in_its_split(tmp_path):
    """CoNLL-2003 ships its splits as files (eng.train, eng.testa, eng.testb): each file names its own."""
    path = conll(tmp_path, "EU NNP B-NP I-ORG\n\nPeter NNP B-NP I-PER\n", name="eng.testa")
    table, rejects = read(read_conll, path=path, split_as="dev")
    assert rejects == [] and table.column("split").to_pylist() == ["validation", "validation"]
    assert "split" not in read(read_conll, path=path)[0].column_names


def test_keep_fields_none_or_named_columns(tmp_path):
    path = conll(tmp_path, "EU NNP B-NP I-ORG\nrejects VBZ B-VP O\n")
    assert read(read_conll, path=path, keep_fields="none")[0].column_names == list(BIO.names)
    table = read(read_conll, path=path, keep_fields=["col2"])[0]
    assert table.column_names == [*BIO.names, "meta_col2"] and table["meta_col2"].to_pylist() == [["B-NP", "B-VP"]]


@pytest.mark.parametrize("keep, match", [(["pos"], "col<i>"), (["col3"], "token or tag"), (["col7"], "does not")])
def test_keep_fields_must_name_other_columns_that_exist(tmp_path, keep, match):
    from dataprep.errors import ConfigError
    path = conll(tmp_path, "EU NNP B-NP I-ORG\n")
    with pytest.raises(ConfigError, match=match):
        read(read_conll, path=path, keep_fields=keep)


def test_bio_jsonl_keeps_other_fields_and_reads_its_split(tmp_path):
    path = write_jsonl(tmp_path / "n.jsonl", [{"tokens": ["a"], "tags": ["O"], "split": "test", "doc": 7},
                                              {"tokens": ["b"], "tags": ["O"], "doc": 8}])
    table, rejects = read(read_jsonl, path=str(path), kind="bio")
    assert rejects == [] and table.column_names == [*BIO.names, "split", "meta_doc"]
    assert table["split"].to_pylist() == ["test", None] and table["meta_doc"].to_pylist() == [7, 8]
