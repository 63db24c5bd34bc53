"""The run itself: each node's stage, key, cache state, time and throughput (stats.json), params, and the warnings
it raises.

The runner does not store warnings, so they are raised again here, from what decided them: a node's params are
built anew (a train_lora setting outside the usual LoRA range warns when its params are made), a stage's
node-level check runs again on the counts the entry recorded (backtranslate's low yield), and an adapter's test
scores are compared with its strong baseline as train_lora compares them.
"""
from __future__ import annotations

import dataclasses
import json
import warnings

from dataprep.errors import DataprepError
from dataprep.registry import key_params
from dataprep.report.html import Section, esc, tag
from dataprep.report.view import NodeState, RunView, read_json
from dataprep.train.baselines import verdict

ID = "run"


def section(view: RunView, found: dict[str, list[str]]) -> Section:
    """`found`: each node's warnings (`collect_warnings`)."""
    head = ["node", "stage", "key", "status", "seconds", "rows / s", "warnings"]
    body = "".join(_row(s, found[s.name]) for s in view.nodes.values())
    header = "".join(tag("th", h, class_="num" if h in ("seconds", "rows / s") else None) for h in head)
    intro = tag("p", "status: the node's entry as the cache holds it now (whether the last run computed it or "
                "found it cached, `dataprep run` says as it goes). seconds: how long the node took when it was "
                "computed (stats.json, measured: the cache does not vouch for it).")
    params = tag("details", tag("summary", "params of every node (the ones in its key)") + _params(view))
    return Section(ID, "The run", intro + tag("table", tag("thead", tag("tr", header)) + tag("tbody", body),
                                              id="run-table") + params)


def _row(s: NodeState, found: list[str]) -> str:
    status = {"cached": "cached", "missing": "not run"}.get(s.status, f"corrupt ({s.problem})")
    seconds, speed = s.stats.get("seconds"), s.stats.get("rows_per_s")
    cells = [tag("td", esc(s.name)), tag("td", esc(s.stage)), tag("td", esc(s.key), class_="key"),
             tag("td", esc(status), class_=f"status-{s.status}"),
             tag("td", f"{seconds:.2f}" if isinstance(seconds, (int, float)) else "—", class_="num"),
             tag("td", f"{speed:,.0f}" if isinstance(speed, (int, float)) else "—", class_="num"),
             tag("td", "".join(tag("div", esc(w), class_="warn") for w in found), data_field="warnings")]
    return tag("tr", "".join(cells), data_node=s.name)


def node_warnings(view: RunView, s: NodeState) -> list[str]:
    """The warnings node `s` raises (or, for a corrupt entry, why it cannot be trusted)."""
    found = _config_warnings(s)
    if s.status == "corrupt":
        found.append(f"cache entry corrupt ({s.problem}): the next run recomputes it")
    if s.ledger is not None and s.node.stage.check_totals is not None:
        found += _check_warnings(s)
    if s.stage == "train_lora":
        found += _adapter_warnings(view, s)
    return found


def _config_warnings(s: NodeState) -> list[str]:
    """What building the node's params warns (the checks a stage's params run on themselves)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataclasses.replace(s.node.params)
    return [str(w.message) for w in caught]


def _check_warnings(s: NodeState) -> list[str]:
    """The stage's node-level check on the counts the entry recorded, as the runner ran it before committing."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            s.node.stage.check_totals(dict(s.ledger.notes), s.node.params, s.name)
        except DataprepError as e:  # committed anyway: an entry made before the check, or by another version
            return [str(e)]
    return [str(w.message) for w in caught]


def _adapter_warnings(view: RunView, s: NodeState) -> list[str]:
    model = view.model_dir(s.name)
    if model is None:
        return []
    metrics = read_json(model / "metrics.json")
    task = read_json(model / "label_map.json").get("task")
    found = verdict(task, metrics, metrics.get("baselines", {})) if metrics and task else None
    return [f"train_lora: {found}"] if found else []


def _params(view: RunView) -> str:
    rows = "".join(tag("tr", tag("td", esc(name)) + tag("td", tag("code", esc(_json(key_params(s.node.params))))))
                   for name, s in view.nodes.items())
    return tag("table", tag("tbody", rows))


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def collect_warnings(view: RunView) -> dict[str, list[str]]:
    return {name: node_warnings(view, s) for name, s in view.nodes.items()}
