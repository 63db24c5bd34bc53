"""Back-translation: what each backtranslate node made (source | pivot | result), how many candidates it kept or
discarded and why, what the later nodes did with the rows it added, how close the results stay to their sources
(chrF and BLEU, sacrebleu) and how varied they are (distinct-n)."""
from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.report.html import Section, count, esc, note, share, table, tag, text_cell, warning
from dataprep.report.samples import EXAMPLES, code, sample
from dataprep.report.view import NodeState, RunView
from dataprep.stages.quality import CJK_LANGS

ID = "backtranslation"
# The counts backtranslate writes in its notes besides those of its filters (bt_identical, bt_runaway, ...).
TOTALS = ("bt_translated", "bt_candidates", "bt_added", "bt_low_yield")
COLUMNS = ["id", "text", "label", "lang", "parent_id", "aug", "bt_pivot"]


def section(view: RunView) -> Section:
    nodes = view.using("backtranslate")
    if not nodes:
        return Section(ID, "Back-translation", omitted="no backtranslate node in the pipeline")
    return Section(ID, "Back-translation", "".join(_block(view, s) for s in nodes))


def _block(view: RunView, s: NodeState) -> str:
    title = tag("h3", f"{esc(s.name)} (backtranslate)")
    missing = [n for n in (s.name, *s.node.inputs) if not view.available(n)]
    if missing:
        return title + note(f"not in the cache: {', '.join(missing)}")
    source = view.inputs(s.name, ["id", "text"])
    out = view.rows(s.name, COLUMNS)
    added = out.filter(pc.invert(pc.is_in(out.column("id"), value_set=source.column("id"))))
    parents = dict(zip(source.column("id").to_pylist(), source.column("text").to_pylist()))
    fates = _fates(view, s, added.column("id").to_pylist())
    parts = [title, _candidates(s), _downstream(view, s, added, fates)]
    if added.num_rows:
        sources = [parents.get(p) or "" for p in added.column("parent_id").to_pylist()]
        results = [t or "" for t in added.column("text").to_pylist()]
        parts += [_examples(s, added, sources, fates), _similarity(added, sources, results)]
    else:
        parts.append(note("the node added no rows: nothing to show or score"))
    return "".join(parts)


def _candidates(s: NodeState) -> str:
    """The node's own counts: rows translated, candidates generated, discarded by each filter, added."""
    notes = s.ledger.notes
    candidates = notes.get("bt_candidates", 0)
    body = [["rows translated", count(notes.get("bt_translated", 0)), ""],
            ["candidates", count(candidates), ""]]
    body += [[f"discarded: {esc(k)}", count(v), share(v, candidates)]
             for k, v in sorted(notes.items()) if k.startswith("bt_") and k not in TOTALS and v]
    body.append(["added as rows", count(notes.get("bt_added", 0)), share(notes.get("bt_added", 0), candidates)])
    flag = warning("the node warned of a low yield (bt_low_yield): see the run section") \
        if notes.get("bt_low_yield") else ""
    return tag("h4", "candidates") + flag + table(["", "rows", "of candidates"], body, numeric={1, 2})


def _fates(view: RunView, s: NodeState, ids: list[str]) -> dict[str, str]:
    """For each added row dropped later: 'node: reason code' of the node that dropped it."""
    wanted = pa.array(ids, pa.string())
    fates: dict[str, str] = {}
    for later in view.downstream_rows(s.name):
        if not view.available(later.name):
            continue
        rejects = view.rejects(later.name)
        hit = rejects.filter(pc.is_in(rejects.column("id"), value_set=wanted))
        for rid, reason in zip(hit.column("id").to_pylist(), hit.column("reason").to_pylist()):
            fates.setdefault(rid, f"{later.name}: {code(reason)}")
    return fates


def _downstream(view: RunView, s: NodeState, added: pa.Table, fates: dict[str, str]) -> str:
    """What the later nodes did with the added rows, and how many reach the dataset the run ends in."""
    n = added.num_rows
    rows = [[esc(fate), count(k), share(k, n)] for fate, k in sorted(Counter(fates.values()).items())]
    final = view.final_rows()
    if final is not None and final.name != s.name and view.available(final.name):
        final_ids = view.rows(final.name, ["id"]).column("id")
        reached = pc.sum(pc.is_in(added.column("id"), value_set=final_ids)).as_py() or 0
        rows.append([f"reach {esc(final.name)}", count(reached), share(reached, n)])
    head = tag("h4", f"the {count(n)} added rows later")
    return head + (table(["", "rows", "of added"], rows, numeric={1, 2}) if rows else note("no later node"))


def _examples(s: NodeState, added: pa.Table, sources: list[str], fates: dict[str, str]) -> str:
    picked = sample(added.num_rows, EXAMPLES, s.name, "examples")
    ids, pivots = added.column("id").to_pylist(), added.column("bt_pivot").to_pylist()
    labels, results = added.column("label").to_pylist(), added.column("text").to_pylist()
    body = [[esc(ids[i]), esc(labels[i] or "—"), text_cell(sources[i]), text_cell(pivots[i]), text_cell(results[i]),
             esc(fates.get(ids[i], "kept throughout"))] for i in picked]
    return (tag("h4", f"examples ({len(picked)} of {count(added.num_rows)}, seeded)") +
            table(["id", "label", "source", "pivot", "result", "later"], body))


def _similarity(added: pa.Table, sources: list[str], results: list[str]) -> str:
    """chrF and BLEU of each result against its source (100: a copy), and distinct-n of results and sources."""
    cjk = _mostly_cjk(added)
    head = tag("h4", "result against source")
    try:
        import sacrebleu
    except ImportError:
        scores = note("sacrebleu is not installed (pip install sacrebleu): no chrF or BLEU")
    else:
        chrf = sacrebleu.corpus_chrf(results, [sources]).score
        bleu = sacrebleu.corpus_bleu(results, [sources], tokenize="zh" if cjk else "13a").score
        scores = table(["metric (sacrebleu, corpus level)", "result vs source"],
                       [["chrF", f"{chrf:.1f}"], [f"BLEU (tokenize {'zh' if cjk else '13a'})", f"{bleu:.1f}"]],
                       numeric={1})
    unit = "characters" if cjk else "words"
    rows = [[f"distinct-{n} ({unit})", f"{distinct(sources, n, cjk):.3f}", f"{distinct(results, n, cjk):.3f}"]
            for n in (1, 2)]
    rows.append([f"new bigrams vs own source ({unit})", "", f"{novel_bigrams(sources, results, cjk):.3f}"])
    diversity = table(["diversity", "sources", "results"], rows, numeric={1, 2})
    return head + scores + diversity


def _mostly_cjk(rows: pa.Table) -> bool:
    langs = Counter(rows.column("lang").to_pylist()) if "lang" in rows.column_names else Counter()
    cjk = sum(n for lang, n in langs.items() if lang in CJK_LANGS)
    return cjk * 2 > sum(langs.values())


def units(text: str, cjk: bool) -> list[str]:
    """Characters (without spaces) for languages written without spaces, lower-cased words otherwise."""
    return [c for c in text if not c.isspace()] if cjk else text.lower().split()


def ngrams(text: str, n: int, cjk: bool) -> list[tuple[str, ...]]:
    u = units(text, cjk)
    return [tuple(u[i:i + n]) for i in range(len(u) - n + 1)]


def distinct(texts: list[str], n: int, cjk: bool) -> float:
    """Distinct-n (Li et al. 2016): distinct n-grams over all n-grams of the texts; higher is more varied."""
    grams = [g for t in texts for g in ngrams(t, n, cjk)]
    return len(set(grams)) / len(grams) if grams else 0.0


def novel_bigrams(sources: list[str], results: list[str], cjk: bool) -> float:
    """The share of a result's bigrams that its own source does not have, over all results: how far each
    paraphrase moved from the row it came from (0: only reordered or copied pieces)."""
    new = total = 0
    for source, result in zip(sources, results):
        known = set(ngrams(source, 2, cjk))
        grams = ngrams(result, 2, cjk)
        new += sum(g not in known for g in grams)
        total += len(grams)
    return new / total if total else 0.0
