"""normalize: one clean, uniform form for classification text and labels."""
from __future__ import annotations

from dataclasses import dataclass

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


@stage("normalize", version=2, kind="map", params=NormalizeParams, consumes=("cls",))
def normalize(table: pa.Table, p: NormalizeParams) -> Outcome:
    """Normalize text and labels: BOM and control characters removed, HTML entities unescaped, NFKC,
    full-width ASCII to half-width, whitespace and CRLF folded to single spaces (with cjk_whitespace, removed
    between CJK characters and next to CJK punctuation); labels trimmed and mapped.

    Drop reasons: `empty_text` (nothing left after normalization), `missing_label` (null or blank),
    `unknown_label:<label>` (strict_labels and the label is not in label_map).
    """
    original = table
    text = clean_text(table.column("text").combine_chunks(), p)
    label = map_labels(T.collapse_whitespace(T.strip_control(table.column("label").combine_chunks())), p.label_map)
    table = table.set_column(table.column_names.index("text"), "text", text)
    table = table.set_column(table.column_names.index("label"), "label", label)
    if p.detect_lang:
        lang = pc.coalesce(table.column("lang"), T.guess_lang(text))
        table = table.set_column(table.column_names.index("lang"), "lang", lang)
    return Outcome.split(table, drop_reasons(text, label, p), original=original)


def clean_text(text: pa.Array, p: NormalizeParams) -> pa.Array:
    if p.html:  # before stripping controls: an entity may encode one (&#8203; &#xFEFF;)
        text = T.unescape_html(text)
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
