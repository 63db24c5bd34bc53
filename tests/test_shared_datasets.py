"""The real datasets in ../shared/datasets (or $DATAPREP_SHARED) through scripts/ingest_shared.py's pipelines:
no crash, every reject traceable to `<file>:<line>`, duplicate counts equal to each SOURCE.md, NER schemes
converted without losing or inventing an entity. Skipped when the shared folder is absent; the full run of
every file is `slow` (DATAPREP_SLOW=1). Nothing from those files is copied here: the expected numbers are
SOURCE.md's measured figures, and the reader options the data needed are tested on synthetic files below.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from dataprep.catalog import get
from dataprep.errors import ConfigError
from dataprep.outcome import Outcome

ROOT = Path(__file__).resolve().parent.parent


def _load_script():
    spec = importlib.util.spec_from_file_location("ingest_shared", ROOT / "scripts" / "ingest_shared.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ingest = _load_script()
SHARED = ingest.shared_root()
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared datasets not found at {SHARED}")
CESU8_HALF = re.compile(rb"^\xed[\xa0-\xbf][\x80-\xbf]")  # a UTF-16 surrogate encoded as if it were a char


def read(reader: str, path, **params) -> Outcome:
    """Run a reader directly: every batch gathered into one Outcome, notes summed."""
    stage = get(reader)
    outs = list(stage.impl(stage.make_params({"path": str(path), **params})))
    notes = sum((Counter(o.notes) for o in outs), Counter())
    return Outcome(pa.concat_tables([o.kept for o in outs]), pa.concat_tables([o.rejected for o in outs]),
                   notes=dict(notes))


def shared_file(dataset: str, name: str) -> Path:
    return SHARED / dataset / name


def count_entities(tags: list[str], strip_suffix: bool = False) -> Counter:
    """Entities per type in raw tags, counted without dataprep: B-/S- open one; I-/M-/E- open one unless they
    continue an entity of their type (the conlleval reading of an ill-formed tag); E-/S-/O close."""
    out, open_type = Counter(), None
    for tag in tags:
        if tag == "O":
            open_type = None
            continue
        prefix, _, etype = tag.partition("-")
        etype = etype.split(".")[0] if strip_suffix else etype
        if prefix in ("B", "S") or open_type != etype:
            out[etype] += 1
        open_type = None if prefix in ("E", "S") else etype
    return out


def bio2_entities(tag_lists) -> Counter:
    """Entities per type in BIO2 output: one per B- tag."""
    return Counter(t[2:] for tags in tag_lists for t in tags if t.startswith("B-"))


def raw_sentences(path: Path, sep: bytes) -> list[tuple[int, list[bytes]]]:
    """(first line, raw lines) per sentence, split on blank lines by hand, independently of read_conll."""
    out, lines, start = [], [], None
    for lineno, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip() or line.startswith(b"-DOCSTART-"):
            if lines:
                out.append((start, lines))
            lines = []
        else:
            start = lineno if not lines else start
            lines.append(line)
    if lines:
        out.append((start, lines))
    return out


# --- (a) every dataset ingests: no crash, every reject is <file>:<line>, ledgers balance ---

@needs_shared
@pytest.mark.parametrize("name", list(ingest.DATASETS))
def test_dataset_ingests_its_smallest_file(name, tmp_path):
    spec = ingest.DATASETS[name]
    smallest = min(spec["files"], key=lambda f: (ingest.dataset_dir(name, SHARED) / f).stat().st_size)
    result = ingest.run_dataset(name, SHARED, tmp_path, files=[smallest])
    assert result.problems == []
    if spec.get("skip"):
        assert "parallel reader not built yet" in result.skipped
        return
    (row,) = result.rows
    assert not row.error and row.records_in > 0
    raw = row.raw_dup if row.raw_dup is not None else row.dup
    if row.source:  # SOURCE.md counts copies of the text as written, which is what rawdup measures
        assert raw["extra"] == row.source[0]


@needs_shared
@pytest.mark.slow
def test_every_file_ingests_and_duplicates_agree_with_source_md(tmp_path):
    assert ingest.main(["--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "t.md")]) == 0
    table = (tmp_path / "t.md").read_text()
    assert "parallel reader not built yet" in table and "CRASH" not in table
    for name in ingest.DATASETS:
        result = ingest.run_dataset(name, SHARED, tmp_path / "cache")  # cached now: only reads manifests
        for row in result.rows:
            raw = row.raw_dup if row.raw_dup is not None else row.dup
            if row.source:
                assert raw["extra"] == row.source[0], (name, row.files)


@needs_shared
def test_davidson_multiline_tweets_need_a_larger_max_record_lines():
    path = shared_file("en_davidson_hate_offensive", "labeled_data.csv")
    good = read("read_csv", path, text_field="tweet", label_field="class", max_record_lines=50)
    assert (good.kept.num_rows, good.rejected.num_rows) == (24_783, 0)  # SOURCE.md: 24,783 rows, 0 malformed
    cut = read("read_csv", path, text_field="tweet", label_field="class")  # default 20 lines
    assert cut.kept.num_rows < 24_783 and cut.rejected.num_rows > 0


@needs_shared
def test_trec_label_and_question_are_split_at_the_first_space_only():
    out = read("read_csv", shared_file("en_trec", "train_5500.label"), delimiter=" ", quoting="none",
               header=False, columns=["label", "text"], max_fields=2)
    assert out.kept.num_rows == 5_451  # SOURCE.md: 5,452 lines, one of them not UTF-8
    assert [(r["id"], r["reason"]) for r in out.rejected.to_pylist()] == [("train_5500.label:66", "invalid_utf8")]
    assert all(re.fullmatch(r"[A-Z]+:\w+", label) for label in out.kept.column("label").to_pylist())


# --- (b) CoNLL-2003 IOB1 -> BIO2: the spans seqeval reads from the IOB1 tags ---

@needs_shared
def test_conll2003_iob1_to_bio2_keeps_exactly_seqevals_spans():
    seq = pytest.importorskip("seqeval.metrics.sequence_labeling")
    scheme = pytest.importorskip("seqeval.scheme")
    raw = read("read_conll", shared_file("ner_en_conll2003", "eng.testa"), delimiter=" ", tag_col=3)
    assert (raw.kept.num_rows, raw.rejected.num_rows) == (3_250, 0)  # SOURCE.md: 3,250 sentences
    converted = get("to_bio2").run(raw.kept, scheme="IOB1")
    assert converted.rejected.num_rows == 0
    before, after = raw.kept.column("tags").to_pylist(), converted.kept.column("tags").to_pylist()
    for iob1, bio2 in zip(before, after):
        expected = sorted(seq.get_entities(iob1))  # (type, first, last)
        strict = sorted((e.tag, e.start, e.end - 1) for e in scheme.Entities([iob1], scheme.IOB1).entities[0])
        ours = sorted((e.tag, e.start, e.end - 1) for e in scheme.Entities([bio2], scheme.IOB2).entities[0])
        assert ours == expected == strict
        assert not any(t.startswith("I-") and (i == 0 or bio2[i - 1][2:] != t[2:])
                       for i, t in enumerate(bio2))  # well-formed BIO2: every I- continues its type


# --- (c) Resume (BMES) and Weibo (BIO with .NAM/.NOM): entity counts preserved ---

@needs_shared
@pytest.mark.parametrize("split,source_b_s", [("train", 13_438), ("dev", 1_497), ("test", 1_630)])
def test_resume_bmes_to_bio2_preserves_entity_counts(split, source_b_s):
    raw = read("read_conll", shared_file("ner_zh_resume", f"{split}.char.bmes"), delimiter=" ")
    out = get("to_bio2").run(raw.kept, scheme="BMES")
    assert raw.rejected.num_rows == out.rejected.num_rows == 0
    tags = raw.kept.column("tags").to_pylist()
    expected = sum((count_entities(t) for t in tags), Counter())
    assert bio2_entities(out.kept.column("tags").to_pylist()) == expected
    # SOURCE.md counts B- and S- tags; train also has 2 M-/E- tags that open an entity with no B- before them
    assert sum(t[:2] in ("B-", "S-") for ts in tags for t in ts) == source_b_s
    assert sum(expected.values()) == source_b_s + (2 if split == "train" else 0)


WEIBO = [(f"weiboNER{v}.{s}", v) for v in ("_2nd_conll", ".conll") for s in ("train", "dev", "test")]


@needs_shared
@pytest.mark.parametrize("strip_suffix", [False, True])
@pytest.mark.parametrize("name,version", WEIBO)
def test_weibo_bio_with_suffixes_preserves_entity_counts(name, version, strip_suffix):
    opts = {"strip_token_position": True} if version == "_2nd_conll" else {"invalid_utf8": "replace"}
    raw = read("read_conll", shared_file("ner_zh_weibo", name), delimiter="\t", **opts)
    out = get("to_bio2").run(raw.kept, scheme="IOB2", strip_suffix=strip_suffix)
    assert raw.rejected.num_rows == out.rejected.num_rows == 0
    assert out.kept.num_rows == (1_350 if name.endswith("train") else 270)  # SOURCE.md: sentences per split
    expected = sum((count_entities(t, strip_suffix) for t in raw.kept.column("tags").to_pylist()), Counter())
    assert bio2_entities(out.kept.column("tags").to_pylist()) == expected
    types = {t.split(".")[0] if strip_suffix else t for t in expected}
    assert types <= {f"{e}{s}" for e in ("PER", "ORG", "LOC", "GPE") for s in ("", ".NAM", ".NOM")}
    assert all("." not in t for t in types) if strip_suffix else all("." in t for t in types)


@needs_shared
def test_weibo_2nd_conll_entity_starts_match_source_md():
    raw = read("read_conll", shared_file("ner_zh_weibo", "weiboNER_2nd_conll.train"), delimiter="\t")
    tags = raw.kept.column("tags").to_pylist()
    assert sum(t.startswith("B-") for ts in tags for t in ts) == 1_885  # SOURCE.md
    out = get("to_bio2").run(raw.kept, scheme="IOB2")
    assert sum(bio2_entities(out.kept.column("tags").to_pylist()).values()) == 1_885 + 10  # + the 10 I- openers


# --- (d) Weibo's broken surrogates: what the reader does with them ---

@needs_shared
@pytest.mark.parametrize("split,lines", [("train", 12), ("dev", 16), ("test", 16)])
def test_weibo_cesu8_surrogates_are_rejected_whole_by_default_or_replaced_on_request(split, lines):
    """The original files store each emoji as two lines, each holding one UTF-16 surrogate encoded like a
    character (CESU-8): not UTF-8. By default read_conll rejects each such sentence whole as
    `invalid_utf8:<first bad line>` under the sentence's `<file>:<line>` id, the bytes kept escaped in the
    reject record. With invalid_utf8=replace the sentence is kept: each bad line's token becomes three
    U+FFFD (one per byte), its tag untouched, and the ledger notes count the lines. The revised 2nd_conll
    files already hold a U+FFFD U+FFFD token at each of those lines and are valid UTF-8."""
    name = f"weiboNER.conll.{split}"
    path = shared_file("ner_zh_weibo", name)
    bad = {}  # sentence's first line -> its first bad line, found without dataprep
    for start, sentence in raw_sentences(path, b"\t"):
        for offset, line in enumerate(sentence):
            if CESU8_HALF.match(line):
                bad.setdefault(start, start + offset)
    assert sum(bool(CESU8_HALF.match(line)) for line in path.read_bytes().split(b"\n")) == lines  # SOURCE.md

    rejected = read("read_conll", path, delimiter="\t")
    assert {(r["id"], r["reason"]) for r in rejected.rejected.to_pylist()} == \
        {(f"{name}:{s}", f"invalid_utf8:{b}") for s, b in bad.items()}
    assert all("\\xed" in r["record"] for r in rejected.rejected.to_pylist())
    assert rejected.kept.num_rows + len(bad) == (1_350 if split == "train" else 270)

    replaced = read("read_conll", path, delimiter="\t", invalid_utf8="replace")
    assert replaced.rejected.num_rows == 0 and replaced.notes == {"utf8_replaced_lines": lines}
    tokens = [t for ts in replaced.kept.column("tokens").to_pylist() for t in ts]
    assert tokens.count("\ufffd" * 3) == lines

    revised = read("read_conll", shared_file("ner_zh_weibo", f"weiboNER_2nd_conll.{split}"), delimiter="\t",
                   strip_token_position=True)
    assert revised.rejected.num_rows == 0
    assert [t for ts in revised.kept.column("tokens").to_pylist() for t in ts].count("\ufffd" * 2) == lines


@needs_shared
def test_script_output_documents_the_weibo_surrogates(tmp_path, capsys):
    assert ingest.main(["--only", "ner_zh_weibo_orig", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "utf8_replaced_lines 12" in out and "CESU-8 surrogate" in out and "invalid_utf8:<first bad line>" in out


# --- the reader options the shared data needed, on synthetic files (always run) ---

def test_csv_max_fields_keeps_the_rest_of_the_line_in_the_last_field(tmp_path):
    (tmp_path / "q.label").write_bytes(b"NUM:date When was it built  ?\nHUM:ind Who \"wrote\" it ?\nLONE\n")
    out = read("read_csv", tmp_path / "q.label", delimiter=" ", quoting="none", header=False,
               columns=["label", "text"], max_fields=2)
    assert [(r["label"], r["text"]) for r in out.kept.to_pylist()] == [
        ("NUM:date", "When was it built  ?"), ("HUM:ind", 'Who "wrote" it ?')]
    assert [(r["id"], r["reason"]) for r in out.rejected.to_pylist()] == [("q.label:3", "bad_csv_row:fields=1")]


def test_csv_max_fields_needs_quoting_none():
    with pytest.raises(ConfigError, match="max_fields needs quoting 'none'"):
        get("read_csv").make_params({"path": "x.csv", "max_fields": 2}, node="raw")


def test_conll_strip_token_position_keeps_at_least_one_character(tmp_path):
    lines = ["新0\tB-LOC", "浪1\tI-LOC", "p10\tO", "110\tO", "\ufffd\ufffd0\tO", "x\tO"]
    (tmp_path / "w.conll").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = read("read_conll", tmp_path / "w.conll", delimiter="\t", strip_token_position=True)
    assert out.kept.column("tokens").to_pylist() == [["新", "浪", "p", "1", "\ufffd\ufffd", "x"]]


def test_conll_invalid_utf8_rejects_the_sentence_naming_the_line_or_replaces(tmp_path):
    (tmp_path / "s.conll").write_bytes(b"a\tO\n\n" + b"b\tB-PER\n\xed\xa0\xbd\tO\n\xed\xb8\x82\tO\n\nc\tO\n")
    out = read("read_conll", tmp_path / "s.conll", delimiter="\t")
    assert [(r["id"], r["reason"]) for r in out.rejected.to_pylist()] == [("s.conll:3", "invalid_utf8:4")]
    assert out.kept.column("id").to_pylist() == ["s.conll:1", "s.conll:7"]
    out = read("read_conll", tmp_path / "s.conll", delimiter="\t", invalid_utf8="replace")
    assert out.rejected.num_rows == 0 and out.notes == {"utf8_replaced_lines": 2}
    assert out.kept.column("tokens").to_pylist()[1] == ["b", "\ufffd" * 3, "\ufffd" * 3]
    assert out.kept.column("tags").to_pylist()[1] == ["B-PER", "O", "O"]


def test_script_skips_cleanly_without_the_shared_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATAPREP_SHARED", str(tmp_path / "absent"))
    assert ingest.main([]) == 0
    assert "shared datasets not found" in capsys.readouterr().out
