"""normalize: one clean, uniform form for classification text and labels."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.outcome import Outcome
from dataprep.registry import param, stage
from dataprep.stages import text as T


@dataclass(frozen=True)
class NormalizeParams:
    nfkc: bool = param(True, "Unicode NFKC: folds compatibility forms (full-width ASCII, ligatures, ①)")
    halfwidth: bool = param(True, "full-width ASCII (ｉＰｈｏｎｅ１２，) to half-width, also when nfkc is off")
    html: bool = param(True, "unescape HTML entities (&amp; &nbsp; &#39;)")
    label_map: dict[str | int, str] | None = param(None, "rename labels, e.g. {0: negative, 1: positive}")
    strict_labels: bool = param(False, "with label_map: reject labels the map does not name")
    detect_lang: bool = param(True, "fill a missing `lang` from the script of the text (zh, ja, ko, en, und)")
    cjk_whitespace: bool = param(False, "also remove the space between two CJK characters or a CJK character and "
                                 "punctuation (`房间 很好 ，` -> `房间很好,`), as exact_dedup's whitespace fold does; "
                                 "spaces between Latin words and beside digits stay")
    lang_id: Literal["script", "py3langid"] = param(
        "script", "how detect_lang names a language: script (zh, ja, ko from the characters; en for any Latin "
        "text, und for others) or py3langid (a language identifier, pip install 'dataprep[clean]', for the "
        "rows the script cannot tell; the script guess where it is unsure)", added=True)
    fix_mojibake: bool = param(False, "repair mojibake with ftfy (UTF-8 read as Latin-1 or cp1252: `æˆ¿é—´` -> "
                               "`房间`; pip install 'dataprep[clean]'); off keeps the text's characters",
                               added=True)

    def __post_init__(self):
        if self.lang_id != "script" and not self.detect_lang:
            raise ValueError(f"lang_id {self.lang_id} names languages for detect_lang, which is off: set "
                             "detect_lang: true or leave lang_id as script")
        _require("fix_mojibake", "ftfy", self.fix_mojibake)
        _require("lang_id: py3langid", "py3langid", self.lang_id == "py3langid")


def _require(option: str, package: str, wanted: bool) -> None:
    """An option that needs an optional package fails with the config, before any row moves."""
    if wanted and importlib.util.find_spec(package) is None:
        raise ValueError(f"{option} needs {package}, which is not installed: pip install 'dataprep[clean]'")


@stage("normalize", version=2, kind="map", params=NormalizeParams, consumes=("cls",))
def normalize(table: pa.Table, p: NormalizeParams) -> Outcome:
    """Normalize text and labels: BOM and control characters removed, HTML entities unescaped, NFKC,
    full-width ASCII to half-width, whitespace and CRLF folded to single spaces (with cjk_whitespace, removed
    between CJK characters and next to CJK punctuation); labels trimmed and mapped.

    With fix_mojibake, ftfy first repairs text that was UTF-8 decoded with the wrong codec (before control
    characters are stripped: such text holds C1 controls that are bytes of the real characters). detect_lang
    fills a missing `lang` from the script; with lang_id py3langid, Latin and other non-CJK rows are named by
    a language identifier where it is sure (the script guess stays where it is not).

    Drop reasons: `empty_text` (nothing left after normalization), `missing_label` (null or blank),
    `unknown_label:<label>` (strict_labels and the label is not in label_map).
    """
    original = table
    text = clean_text(table.column("text").combine_chunks(), p)
    label = map_labels(T.collapse_whitespace(T.strip_control(table.column("label").combine_chunks())), p.label_map)
    table = table.set_column(table.column_names.index("text"), "text", text)
    table = table.set_column(table.column_names.index("label"), "label", label)
    if p.detect_lang:
        table = table.set_column(table.column_names.index("lang"), "lang", detect_lang(table.column("lang"), text, p))
    return Outcome.split(table, drop_reasons(text, label, p), original=original)


def detect_lang(lang: pa.ChunkedArray, text: pa.Array, p: NormalizeParams) -> pa.Array:
    """A row's own lang, else the script's guess (and, with lang_id py3langid, the identifier's)."""
    lang = lang.combine_chunks()
    guess = T.guess_lang(text)
    if p.lang_id == "py3langid":
        guess = T.identify_lang(text, guess, pc.is_null(lang))
    return pc.coalesce(lang, guess)


def clean_text(text: pa.Array, p: NormalizeParams) -> pa.Array:
    if p.html:  # before stripping controls: an entity may encode one (&#8203; &#xFEFF;)
        text = T.unescape_html(text)
    if p.fix_mojibake:  # before stripping controls too: UTF-8 read as Latin-1 holds C1 controls (0x80-0x9F)
        text = T.fix_mojibake(text)
    text = T.strip_control(text)
    if p.nfkc:
        text = T.nfkc(text)
    if p.halfwidth:
        text = T.halfwidth(text)
    return T.fold_whitespace(text) if p.cjk_whitespace else T.collapse_whitespace(text)


def map_labels(label: pa.Array, label_map: dict | None) -> pa.Array:
    if not label_map:
        return label
    mapping = {str(k): v for k, v in label_map.items()}
    keys = pa.array(list(mapping), pa.string())
    idx = pc.index_in(label, value_set=keys)
    mapped = pc.take(pa.array(list(mapping.values()), pa.string()), idx)
    return pc.coalesce(mapped, label)


def drop_reasons(text: pa.Array, label: pa.Array, p: NormalizeParams) -> pa.Array:
    empty_text = pc.fill_null(pc.equal(pc.utf8_length(text), 0), True)
    no_label = pc.fill_null(pc.equal(pc.utf8_length(label), 0), True)
    conditions, values = [empty_text, no_label], ["empty_text", "missing_label"]
    if p.strict_labels and p.label_map:
        known = {str(v) for v in p.label_map.values()}
        conditions.append(pc.invert(pc.is_in(label, value_set=pa.array(sorted(known), pa.string()))))
        values.append(pc.binary_join_element_wise("unknown_label", label, ":"))
    return pc.case_when(pc.make_struct(*conditions), *values, pa.scalar(None, pa.string()))
