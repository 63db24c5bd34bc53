"""normalize: text folding, labels, drop reasons — and rejected rows recorded as they came in."""
from __future__ import annotations

import json

import pyarrow as pa
import pytest
import yaml
from testkit import cls_table, write_jsonl

from dataprep import normalize
from dataprep.dag import parse_pipeline
from dataprep.runner import Runner
from dataprep.schema import CLS


def texts(table: pa.Table) -> list[str]:
    return table.column("text").to_pylist()


def rejected(outcome) -> list[tuple[str, str]]:
    return [(r["id"], r["reason"]) for r in outcome.rejected.to_pylist()]


def with_lang(table: pa.Table, langs) -> pa.Table:
    return table.set_column(table.column_names.index("lang"), "lang", pa.array(langs, pa.string()))


# --- text ---

def test_nfkc_folds_compatibility_forms_and_can_be_turned_off():
    table = cls_table(["ﬁne ①", "Ⅻ㎏"])
    assert texts(normalize(table)) == ["fine 1", "XIIkg"]
    assert texts(normalize(table, nfkc=False)) == ["ﬁne ①", "Ⅻ㎏"]


@pytest.mark.parametrize("nfkc", [True, False])
def test_fullwidth_ascii_becomes_halfwidth_also_without_nfkc(nfkc):
    out = normalize(cls_table(["ｉＰｈｏｎｅ１２", "好，很好！"]), nfkc=nfkc)
    assert texts(out) == ["iPhone12", "好,很好!"]


def test_halfwidth_off_and_nfkc_off_keeps_fullwidth():
    assert texts(normalize(cls_table(["ｉＰｈｏｎｅ１２"]), nfkc=False, halfwidth=False)) == ["ｉＰｈｏｎｅ１２"]


def test_bom_zero_width_and_control_characters_are_removed():
    table = cls_table(["\ufeffgood", "a\u200bb\u200dc", "bell\u0007s", "left\u200eright\u2028end"])
    assert texts(normalize(table)) == ["good", "abc", "bells", "leftrightend"]


def test_crlf_tabs_and_ideographic_spaces_fold_to_single_spaces():
    table = cls_table(["a\r\nb", "a\t\tb", "a\u3000\u3000b", "  a \n\n b\u00a0 c  ", "好\u3000 \r\n 吃"])
    assert texts(normalize(table)) == ["a b", "a b", "a b", "a b c", "好 吃"]


def test_cjk_whitespace_removes_spaces_between_cjk_and_is_off_by_default():
    table = cls_table(["房间 很好 ， 服务 不错 。", "good  food , really", "我用 iPhone 很好"])
    assert texts(normalize(table)) == ["房间 很好 , 服务 不错 。", "good food , really", "我用 iPhone 很好"]
    assert texts(normalize(table, cjk_whitespace=True)) == ["房间很好,服务不错。", "good food , really",
                                                            "我用 iPhone 很好"]


def test_crlf_folds_to_a_space_also_without_nfkc():
    assert texts(normalize(cls_table(["a\r\nb\u3000c"]), nfkc=False)) == ["a b c"]


def test_html_entities_are_unescaped_and_can_be_left_alone():
    table = cls_table(["Tom &amp; Jerry", "&lt;b&gt;bold&lt;/b&gt;", "it&#39;s", "a&nbsp;b"])
    assert texts(normalize(table)) == ["Tom & Jerry", "<b>bold</b>", "it's", "a b"]
    assert texts(normalize(table, html=False)) == ["Tom &amp; Jerry", "&lt;b&gt;bold&lt;/b&gt;", "it&#39;s",
                                                   "a&nbsp;b"]


def test_html_entities_that_encode_control_characters_are_removed_too():
    # Entities are unescaped before control characters are stripped, so &#8203; leaves no zero-width space.
    out = normalize.run(cls_table(["a&#8203;b", "&#xFEFF;x", "x&#13;&#10;y", "&#8203;"]))
    assert texts(out.kept) == ["ab", "x", "x y"]
    assert rejected(out) == [("t:4", "empty_text")]


# --- labels ---

def test_labels_are_trimmed_and_stripped_of_control_characters():
    out = normalize(cls_table(["a", "b", "c"], [" pos\t", "\ufeffneg", "pos\u200b"]))
    assert out.column("label").to_pylist() == ["pos", "neg", "pos"]


def test_label_map_with_int_keys_from_yaml_maps_string_labels(workdir):
    write_jsonl(workdir / "in.jsonl", [{"text": "bad", "label": 0}, {"text": "good", "label": 1},
                                       {"text": "fine", "label": " 1 "}, {"text": "meh", "label": 2}])
    doc = yaml.safe_load("""
        nodes:
          raw:   {uses: read_jsonl, with: {path: in.jsonl}}
          clean: {uses: normalize, input: raw, with: {label_map: {0: neg, 1: pos}}}
    """)
    pipeline = parse_pipeline(doc)
    assert pipeline.nodes["clean"].params.label_map == {0: "neg", 1: "pos"}  # YAML keys stay ints
    runner = Runner(pipeline, "cache")
    runner.run()
    out = runner.output("clean")
    assert out.column("label").to_pylist() == ["neg", "pos", "pos", "2"]  # unmapped labels pass as they are
    assert runner.rejects("clean").num_rows == 0


def test_strict_labels_rejects_labels_the_map_does_not_name():
    table = cls_table(["x", "y", "z", "w"], ["0", "1", "2", "pos"])
    out = normalize.run(table, label_map={0: "neg", 1: "pos"}, strict_labels=True)
    assert out.kept.column("label").to_pylist() == ["neg", "pos", "pos"]  # a mapped value is known too
    assert rejected(out) == [("t:3", "unknown_label:2")]


def test_strict_labels_without_a_map_rejects_nothing():
    out = normalize.run(cls_table(["x", "y"], ["anything", "else"]), strict_labels=True)
    assert rejected(out) == [] and out.kept.num_rows == 2


# --- drop reasons ---

def test_empty_text_after_normalization_is_rejected():
    table = cls_table(["", "   ", None, "\u200b\ufeff\u0007", "\u3000\r\n\t", "&nbsp;", "kept"])
    out = normalize.run(table)
    assert texts(out.kept) == ["kept"]
    assert rejected(out) == [(f"t:{i}", "empty_text") for i in range(1, 7)]


def test_missing_label_null_or_blank_is_rejected():
    out = normalize.run(cls_table(["a", "b", "c", "d", "e"], [None, "", "  \t", "\u200b", "ok"]))
    assert out.kept.column("id").to_pylist() == ["t:5"]
    assert rejected(out) == [("t:1", "missing_label"), ("t:2", "missing_label"), ("t:3", "missing_label"),
                             ("t:4", "missing_label")]


def test_empty_text_wins_over_missing_label_and_unknown_label():
    out = normalize.run(cls_table(["", "x"], [None, "7"]), label_map={1: "pos"}, strict_labels=True)
    assert rejected(out) == [("t:1", "empty_text"), ("t:2", "unknown_label:7")]


def test_rejected_rows_carry_the_original_record():
    raw_text, raw_label = "\ufeff\u3000\r\n", "\t"
    table = with_lang(cls_table([raw_text, "ｆｉｎｅ"], [" x ", raw_label]), [None, None])
    out = normalize.run(table, label_map={"x": "mapped"})
    records = [json.loads(r) for r in out.rejected.column("record").to_pylist()]
    assert rejected(out) == [("t:1", "empty_text"), ("t:2", "missing_label")]
    assert records == [{"id": "t:1", "text": raw_text, "label": " x ", "lang": None, "source": "t"},
                       {"id": "t:2", "text": "ｆｉｎｅ", "label": raw_label, "lang": None, "source": "t"}]


# --- language ---

def test_lang_is_guessed_from_the_script_only_where_missing():
    table = with_lang(cls_table(["你好世界", "hello world", "こんにちは", "안녕하세요", "12345 !!!", "这部iPhone12很好",
                                 "hello", "你好"]), [None] * 6 + ["fr", "en"])
    assert normalize(table).column("lang").to_pylist() == ["zh", "en", "ja", "ko", "und", "zh", "fr", "en"]


def test_lang_is_left_missing_when_detection_is_off():
    table = with_lang(cls_table(["你好"]), [None])
    assert normalize(table, detect_lang=False).column("lang").to_pylist() == [None]


def test_kanji_with_kana_is_japanese_and_mostly_latin_is_english():
    table = with_lang(cls_table(["日本語のテキスト", "a long English sentence with 中"]), [None, None])
    assert normalize(table).column("lang").to_pylist() == ["ja", "en"]


# --- shapes ---

def test_keeps_extra_columns_and_the_schema():
    table = cls_table(["ａ", "b"], extra=["x", "y"])
    out = normalize(table)
    assert out.column_names == CLS.names + ["extra"]
    assert out.column("extra").to_pylist() == ["x", "y"] and texts(out) == ["a", "b"]


def test_works_on_a_datasets_dataset_and_returns_one():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset(cls_table(["ｉＰｈｏｎｅ", "", "x &amp; y"], ["pos", "neg", "neg"]))
    out = normalize(ds)
    assert isinstance(out, datasets.Dataset)
    assert out["text"] == ["iPhone", "x & y"] and out["id"] == ["t:1", "t:3"]


def test_works_on_a_filtered_dataset():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset(cls_table(["a", "ｂ", "c"])).select([1, 2])
    assert normalize(ds)["text"] == ["b", "c"]
