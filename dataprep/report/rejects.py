"""Samples of rejected rows: a fixed, seeded number per node and reason, each with what explains its drop — a
duplicate's kept row, a label conflict's other rows and their labels, a perplexity drop's score and threshold, a
quality rule's statistic."""
from __future__ import annotations

import re
from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.report.html import Section, count, esc, table, tag, text_cell
from dataprep.report.samples import PER_REASON, anchor, by_id, code, detail, record, sample, shown_text
from dataprep.report.view import NodeState, RunView
from dataprep.stages.dedup import dedup_keys
from dataprep.stages.quality import PREFIX

ID = "rejects"
QUALITY_RULE = re.compile(r"quality:(?P<stat>[A-Za-z0-9_]+)(?P<op>[<>])(?P<threshold>.+)")


def section(view: RunView) -> Section:
    nodes = [s for s in view.row_nodes() if s.ledger is not None and s.ledger.dropped_total]
    if not nodes:
        return Section(ID, "Rejected rows", omitted="no cached node dropped a row")
    intro = tag("p", f"Up to {PER_REASON} rows per node and reason, drawn with a fixed seed; the reason's "
                "detail says why (the kept row's id, the conflicting labels, the threshold crossed).")
    return Section(ID, "Rejected rows", intro + "".join(_node_block(view, s) for s in nodes))


def _node_block(view: RunView, s: NodeState) -> str:
    rejects = view.rejects(s.name)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, reason in enumerate(rejects.column("reason").to_pylist()):
        groups[code(reason)].append(i)
    blocks = [_reason_block(view, s, rejects, c, rows) for c, rows in sorted(groups.items())]
    summary = tag("summary", f"{esc(s.name)} ({esc(s.stage)}): {count(rejects.num_rows)} rejected")
    return tag("details", summary + "".join(blocks), id=anchor(s.name))


def _reason_block(view: RunView, s: NodeState, rejects: pa.Table, reason_code: str, rows: list[int]) -> str:
    picked = rejects.take(pa.array([rows[i] for i in sample(len(rows), PER_REASON, s.name, reason_code)],
                                   pa.int64())).to_pylist()
    context = _context(view, s, reason_code, picked)
    body = [[esc(r["id"]), tag("code", esc(r["reason"])), esc(_label(r)),
             text_cell(shown_text(record(r["record"]), r["record"])), context[i]] for i, r in enumerate(picked)]
    head = tag("h4", f"{esc(reason_code)}: {count(len(rows))} rows" +
               (f", {len(picked)} shown" if len(picked) < len(rows) else ""))
    return tag("div", head + table(["id", "reason", "label", "text", "why"], body), id=anchor(s.name, reason_code))


def _label(reject: dict) -> str:
    row = record(reject["record"])
    return str(row.get("label")) if row is not None and row.get("label") is not None else "—"


def _context(view: RunView, s: NodeState, reason_code: str, picked: list[dict]) -> list[str]:
    """The 'why' cell of each sampled row."""
    if reason_code == "duplicate_of":
        return _keepers(view, s, picked)
    if reason_code == "label_conflict" and s.stage == "exact_dedup":
        return _conflicts(view, s, picked)
    if reason_code.startswith("ppl_"):
        return [_perplexity(r) for r in picked]
    if reason_code == "quality":
        return [_quality(r) for r in picked]
    return [""] * len(picked)


def _keepers(view: RunView, s: NodeState, picked: list[dict]) -> list[str]:
    """The row each duplicate was dropped for: its id is in the reason, its text in the node's output."""
    kept = by_id(view.rows(s.name, ["id", "text", "tokens", "label"]), [detail(r["reason"]) for r in picked])
    cells = []
    for r in picked:
        keeper = kept.get(detail(r["reason"]))
        if keeper is None:
            cells.append(tag("span", "kept row not in this node's output", class_="muted"))
            continue
        label = f" [{esc(keeper['label'])}]" if keeper.get("label") is not None else ""
        cells.append(f"kept {tag('code', esc(keeper['id']))}{label}: " + text_cell(shown_text(keeper)))
    return cells


def _conflicts(view: RunView, s: NodeState, picked: list[dict]) -> list[str]:
    """Every row that shares the dropped row's dedup key, with its label and whether it was kept: the rows that
    disagree. Keys are exact_dedup's own (`dedup_keys` with the node's folds), computed on the rows concerned."""
    kind, fold = s.node.kind, list(s.node.params.fold)
    rejects = view.rejects(s.name)
    conflicted = [record(raw) or {} for raw, reason in zip(rejects.column("record").to_pylist(),
                                                           rejects.column("reason").to_pylist())
                  if code(reason) == "label_conflict"]
    output = view.rows(s.name, ["id", "text", "tokens", "label"])
    members: dict[str, list[str]] = defaultdict(list)
    for key, row in zip(_keys(conflicted, kind, fold), conflicted):
        members[key].append(_member(row, "dropped"))
    keys = dedup_keys(output, fold, kind)
    same = pc.is_in(keys, value_set=pa.array(sorted(members), pa.string()))  # only those rows become Python
    for key, row in zip(keys.filter(same).to_pylist(), output.filter(same).to_pylist()):
        members[key].append(_member(row, "kept"))
    picked_keys = _keys([record(r["record"]) or {} for r in picked], kind, fold)
    return ["<br>".join(members.get(k, [])) for k in picked_keys]


def _keys(rows: list[dict], kind: str, fold: list[str]) -> list[str]:
    column = "text" if kind == "cls" else "tokens"
    values = [r.get(column) for r in rows]
    as_table = pa.table({column: pa.array(values, pa.string() if kind == "cls" else pa.list_(pa.string()))})
    return dedup_keys(as_table, fold, kind).to_pylist()


def _member(row: dict, fate: str) -> str:
    label = esc(row.get("label") if row.get("label") is not None else "—")
    return f"{tag('code', esc(row.get('id')))} [{label}] {fate}: {text_cell(shown_text(row), 80)}"


def _perplexity(reject: dict) -> str:
    """The row's score against the threshold its reason names (ppl_filter writes the resolved cut into it)."""
    row = record(reject["record"]) or {}
    score = row.get("ppl")
    cut = detail(reject["reason"])
    scored = f"ppl {score:.4g}" if isinstance(score, (int, float)) else "not scored"
    return f"{scored}; cut {esc(cut)}" if cut else scored


def _quality(reject: dict) -> str:
    """A heuristic rule's statistic on the row, against the rule's threshold (`quality:dup5_frac>0.15`)."""
    match = QUALITY_RULE.fullmatch(reject["reason"])
    if match is None:
        return ""
    value = (record(reject["record"]) or {}).get(PREFIX + match["stat"])
    shown = f"{value:.4g}" if isinstance(value, (int, float)) else "—"
    return f"{esc(match['stat'])} = {shown} (rule: {esc(match['op'])} {esc(match['threshold'])})"

