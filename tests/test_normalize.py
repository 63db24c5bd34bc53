"""normalize: text folding, labels, drop reasons — and rejected rows recorded as they came in."""
from __future__ import annotations

import json
import sys

import pyarrow as pa
import pytest
import yaml
from testkit import cls_table, write_jsonl

from dataprep import normalize
from dataprep.dag import parse_pipeline
from dataprep.errors import ConfigError
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


def test_lang_id_names_latin_and_cyrillic_languages_the_script_cannot():
    """The script calls French and German `en` and Russian `und`; py3langid (a model in its wheel, nothing
    downloaded) names them. CJK stays the script's: a row's characters decide zh, ja, ko."""
    pytest.importorskip("py3langid")
    lines = {"fr": "Le service était excellent et la chambre très propre.",
             "de": "Das Hotel war sauber und das Personal sehr freundlich.",
             "ru": "Отличный отель, очень чистые номера.", "en": "The room was clean and the staff were friendly.",
             "zh": "房间很干净，服务员也很热情。", "ja": "部屋はとても清潔でした。"}
    table = with_lang(cls_table(list(lines.values()) + ["Très bien"]), [None] * len(lines) + ["it"])
    assert normalize(table).column("lang").to_pylist() == ["en", "en", "und", "en", "zh", "ja", "it"]
    assert normalize(table, lang_id="py3langid").column("lang").to_pylist() == [*lines, "it"]  # its own lang kept


def test_lang_id_keeps_the_script_guess_where_the_identifier_is_unsure():
    """A digit string has no language (the identifier spreads its probability evenly: the script's `und`
    stays); "Terrible service." it calls French with probability 0.14, below LANG_ID_MIN_PROB: the script's
    `en` stays, which is right."""
    pytest.importorskip("py3langid")
    table = with_lang(cls_table(["12345 !!!", "Terrible service."]), [None, None])
    assert normalize(table, lang_id="py3langid").column("lang").to_pylist() == ["und", "en"]


def test_lang_id_without_detect_lang_is_a_config_error(workdir):
    write_jsonl(workdir / "in.jsonl", [{"text": "x", "label": "a"}])
    doc = {"name": "n", "nodes": {"raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
                                  "clean": {"uses": "normalize", "input": "raw",
                                            "with": {"detect_lang": False, "lang_id": "py3langid"}}}}
    with pytest.raises(ConfigError, match=r"^nodes\.clean\.with: lang_id py3langid names languages for "
                                          r"detect_lang, which is off"):
        parse_pipeline(doc)


# --- mojibake ---

def mojibake(text: str, codec: str = "latin-1") -> str:
    """`text` as it reads after its UTF-8 bytes were decoded with `codec`."""
    return text.encode("utf-8").decode(codec)


def test_fix_mojibake_repairs_utf8_read_with_the_wrong_codec():
    pytest.importorskip("ftfy")
    # latin-1 leaves C1 controls (外 is E5 A4 96: `å¤\x96`), which stripping would destroy: ftfy runs first
    broken = [mojibake("这次点的外卖很好吃"), mojibake("Ã©tÃ© à Paris", "utf-8"), mojibake("café", "cp1252"),
              mojibake("привет", "cp1251")]
    assert "\x96" in broken[0]
    out = normalize(cls_table(broken), fix_mojibake=True)
    assert texts(out) == ["这次点的外卖很好吃", "été à Paris", "café", "привет"]


def test_fix_mojibake_leaves_correct_text_alone():
    pytest.importorskip("ftfy")
    fine = ["São Paulo", "naïve façade", "Straße", "中国·北京", "100€ 5×3 °C", "“quoted” — it’s fine", "房间很好"]
    assert texts(normalize(cls_table(fine), fix_mojibake=True)) == texts(normalize(cls_table(fine)))


def test_mojibake_is_kept_by_default():
    """Off by default: every pipeline's normalize output stays what it was (and needs no ftfy)."""
    broken = cls_table([mojibake("这次点的外卖很好吃")])
    assert texts(normalize(broken)) == texts(normalize(broken, fix_mojibake=False))
    assert "外卖" not in texts(normalize(broken))[0]


@pytest.mark.parametrize("option, package", [({"fix_mojibake": True}, "ftfy"),
                                             ({"lang_id": "py3langid"}, "py3langid")])
def test_an_option_without_its_package_fails_before_any_row_moves(workdir, monkeypatch, option, package):
    monkeypatch.setitem(sys.modules, package, None)  # importlib.util.find_spec then finds nothing
    write_jsonl(workdir / "in.jsonl", [{"text": "x", "label": "a"}])
    doc = {"name": "n", "nodes": {"raw": {"uses": "read_jsonl", "with": {"path": "in.jsonl"}},
                                  "clean": {"uses": "normalize", "input": "raw", "with": option}}}
    with pytest.raises(ConfigError, match=rf"^nodes\.clean\.with: .* needs {package}, which is not installed: "
                                          r"pip install 'dataprep\[clean\]'$"):
        parse_pipeline(doc)


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
