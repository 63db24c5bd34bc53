"""`dataprep report`: one self-contained HTML page about a cached run, checked in a real browser.

The browser tests open the page in headless Debian Chromium over the DevTools protocol (a small client on
`websockets`, below): the page must load from disk with no request but its own file and no console error, and the
funnel it renders must be the ledgers of the cache entries. The other tests read the HTML: sections present or
omitted with a note, samples that explain each drop, the same bytes from the same cache, the CLI.

One small pipeline in the shape of the sample one (dirt, dedup, a perplexity cut, split, back-translation,
filters on the new rows, rebalance, a tiny LoRA adapter) is built once for the module; with test_translator's tiny
translator pair (shared when both run) the module takes about two minutes on a busy two-core machine.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from pathlib import Path

import pyarrow.compute as pc
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

from click.testing import CliRunner  # noqa: E402
from test_translator import pairs, tiny_translator, write_pairs  # noqa: E402
from testkit import write_jsonl, write_pipeline  # noqa: E402

from dataprep.cli import main  # noqa: E402
from dataprep.dag import load_pipeline  # noqa: E402
from dataprep.report import build_report, write_report  # noqa: E402
from dataprep.report.html import esc  # noqa: E402
from dataprep.runner import Runner  # noqa: E402

CHROMIUM = shutil.which("chromium")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it with apt-get when run as "
    "root; here it could not be)")


# --- the pipeline ---

def label_of(text: str) -> str:
    return "pos" if ("好" in text or "干净" in text) else "neutral" if "一般" in text else "neg"


def reviews() -> list:
    """The translator's Chinese sentences as reviews, and dirt each early node drops: a malformed line, an empty
    text, a copy with a trailing space (exact_dedup keeps the first), the same text with two labels."""
    zh = sorted({z for z, _ in pairs()})
    rows = [{"text": t, "label": label_of(t)} for t in zh]
    flipped = "pos" if label_of(zh[1]) != "pos" else "neg"
    return rows + ["{not json", {"text": "", "label": "pos"}, {"text": zh[0] + " ", "label": label_of(zh[0])},
                   {"text": zh[1], "label": flipped}]


def pipeline_nodes(translator: Path) -> dict:
    """The sample pipeline's shape in miniature; `translator` is a train_translator model directory."""
    return {
        "raw": {"uses": "read_jsonl", "with": {"path": "reviews.jsonl", "lang": "zh"}},
        "clean": {"uses": "normalize", "input": "raw"},
        "unique": {"uses": "exact_dedup", "input": "clean", "with": {"fold": ["whitespace", "case"],
                                                                     "conflicts": "drop_all"}},
        "pairs": {"uses": "read_parallel", "with": {"path": "pairs.tsv"}},
        "tok": {"uses": "train_tokenizer", "input": "pairs", "with": {"vocab_size": 400}},
        "lm": {"uses": "pretrain_lm", "input": "pairs",
               "with": {"tokenizer": {"node": "tok"}, "n_embd": 32, "n_head": 2, "max_steps": 30}},
        "scored": {"uses": "ppl_score", "input": "unique", "with": {"model": {"node": "lm"}}},
        "kept": {"uses": "ppl_filter", "input": "scored", "with": {"max_percentile": 90}},
        "splits": {"uses": "split", "input": "kept", "with": {"val": 0.2, "test": 0.2}},
        "aug": {"uses": "backtranslate", "input": "splits",
                "with": {"forward": str(translator), "pivot": "en", "only_split": "train"}},
        "aug_scored": {"uses": "ppl_score", "input": "aug", "with": {"model": {"node": "lm"}, "only_augmented": True}},
        "aug_kept": {"uses": "ppl_filter", "input": "aug_scored",
                     "with": {"max_percentile": 80, "only_augmented": True}},
        "aug_unique": {"uses": "exact_dedup", "input": "aug_kept",
                       "with": {"fold": ["whitespace", "case"], "conflicts": "keep_first", "keep_originals": True}},
        "balanced": {"uses": "rebalance", "input": "aug_unique",
                     "with": {"strategy": "auto", "mode": "over", "prefer_augmented": True, "only_split": "train"}},
        # Tiny on purpose (and so outside the usual LoRA ranges: the run section must show those warnings).
        "adapter": {"uses": "train_lora", "input": "balanced",
                    "with": {"base_model": {"node": "lm"}, "r": 4, "alpha": 8, "lr": 5e-3, "epochs": 2,
                 "batch_size": 8}},
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(directory, pipeline file, runner) of the whole pipeline, run once; paths in it are relative to the
    directory, as they are for the CLI."""
    root = tmp_path_factory.mktemp("report")
    write_jsonl(root / "reviews.jsonl", reviews())
    write_pairs(root / "pairs.tsv")
    # The translator pair test_translator trains (once per session, shared with test_backtranslate), by directory.
    _, translator = tiny_translator(tmp_path_factory)
    nodes = pipeline_nodes(translator.model_dir("mt"))
    path = write_pipeline(root / "mini.yaml", nodes, name="mini", defaults={"seed": 13})
    with _cwd(root), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny adapter's settings and score draw warnings, on purpose
        runner = Runner(load_pipeline(path.name), root / "cache")  # absolute: the tests read it from anywhere
        runner.run()
    return root, path, runner


@pytest.fixture(scope="module")
def page(built) -> str:
    root, path, _ = built
    with _cwd(root):
        return build_report(path.name, "cache")


class _cwd:
    """Run a block in `path` (module fixtures cannot use monkeypatch.chdir)."""

    def __init__(self, path: Path):
        self.path, self.before = path, None

    def __enter__(self):
        import os
        self.before = os.getcwd()
        os.chdir(self.path)

    def __exit__(self, *exc):
        import os
        os.chdir(self.before)


def ledgers(runner: Runner) -> dict[str, dict]:
    """The ledger of every cached row node, from the manifests (what `dataprep show` prints)."""
    return {r.node: r.ledger.to_dict() for r in runner.plan()
            if r.ledger is not None and runner.pipeline.nodes[r.node].kind != "model"}


def section_html(page: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', page, re.S)
    assert match, f"no section {section_id}"
    return match.group(1)


# --- a small client of the Chrome DevTools protocol ---

class Browser:
    """Headless Chromium driven over the DevTools protocol: one page, every console message, exception and
    network request it causes recorded. Chromium is started as one process (the Debian launcher execs it) and
    stopped by that pid only: Browser.close, then SIGKILL if it has not exited."""

    def __init__(self, profile: Path):
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.connection = ExitStack()
        self.ws = None
        self.next_id = 0
        self.console: list[dict] = []
        self.exceptions: list[dict] = []
        self.log: list[dict] = []
        self.requests: list[str] = []
        self.events: list[dict] = []
        try:
            self._connect()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        from websockets.sync.client import connect
        self.ws = self.connection.enter_context(connect(self._endpoint(), max_size=None, open_timeout=30))
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=True)

    def _endpoint(self) -> str:
        """The browser's websocket URL, from the line Chromium prints on stderr when it listens."""
        deadline = time.monotonic() + 60
        for line in self.proc.stderr:
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                return found.group(1)
            if time.monotonic() > deadline:
                break
        raise RuntimeError(f"chromium did not start (exit code {self.proc.poll()})")

    def call(self, method: str, params: dict | None = None, session: bool = False, timeout: float = 60) -> dict:
        """Send one command and wait for its answer, recording the events that arrive meanwhile."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._record(reply)

    def _record(self, event: dict) -> None:
        method, params = event.get("method"), event.get("params", {})
        self.events.append(event)
        if method == "Runtime.consoleAPICalled":
            self.console.append(params)
        elif method == "Runtime.exceptionThrown":
            self.exceptions.append(params)
        elif method == "Log.entryAdded":
            self.log.append(params["entry"])
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])

    def wait_for(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self._record(json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01))))

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_for("Page.loadEventFired")

    def settle(self, seconds: float = 0.5) -> None:
        """Let late events (a failed image load, a console message from a timer) arrive before they are read."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self._record(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                break

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> bytes:
        png = base64.b64decode(self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                                         session=True)["data"])
        path.write_bytes(png)
        return png

    def errors(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and browser log errors, one line each."""
        found = [f"console.{m['type']}: {' '.join(str(a.get('value', a.get('description'))) for a in m['args'])}"
                 for m in self.console if m["type"] in ("error", "warning", "assert")]
        found += [f"exception: {e['exceptionDetails'].get('text')}" for e in self.exceptions]
        found += [f"log {e['level']}: {e['text']} ({e.get('url', '')})" for e in self.log
                  if e["level"] in ("error", "warning")]
        return found

    def close(self) -> None:
        try:
            if self.ws is not None:
                with _quiet():
                    self.call("Browser.close", timeout=10)
            with _quiet():
                self.connection.close()
        finally:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # this pid only
                self.proc.wait(timeout=15)
            self.proc.stderr.close()


class _quiet:
    """Closing the browser may drop the connection before the answer comes: that is the browser closing."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, Exception)


@pytest.fixture
def browser(tmp_path):
    pytest.importorskip("websockets", reason="the DevTools client needs websockets (in the dev extra)")
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path))
    b = Browser(profile)
    yield b
    b.close()


# --- in the browser ---

FUNNEL_JS = """
[...document.querySelectorAll('#funnel-table tr[data-node]')].map(tr => {
  const cell = (f) => tr.querySelector(`[data-field="${f}"]`).innerText.replace(/,/g, '');
  const reasons = {};
  tr.querySelectorAll('[data-field="reasons"] a').forEach(a => {
    const [code, n] = a.innerText.split(' ');
    reasons[code] = Number(n.replace(/,/g, ''));
  });
  return {node: tr.dataset.node, status: cell('status'), in: Number(cell('in')), out: Number(cell('out')),
          added: Number(cell('added')), dropped: Number(cell('dropped')), reasons};
})
"""


@needs_browser
def test_the_report_loads_offline_without_errors_and_its_funnel_is_the_ledger(built, tmp_path, browser):
    root, path, runner = built
    with _cwd(root):
        report = write_report(path.name, tmp_path / "report.html", "cache")
    url = report.resolve().as_uri()
    browser.open(url)
    browser.settle()
    png = browser.screenshot(tmp_path / "report.png")
    assert browser.errors() == []
    assert browser.requests == [url], "the page asked for something besides itself"
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    from PIL import Image
    with Image.open(tmp_path / "report.png") as shot:
        assert shot.width > 1200 and shot.height > 3000  # the whole page, not an empty viewport
        assert len(shot.convert("L").getcolors(1 << 16) or []) > 50  # text and plots drawn, not a blank page

    shown = {row["node"]: row for row in browser.evaluate(FUNNEL_JS)}
    expected = ledgers(runner)
    assert set(shown) == set(expected)
    for node, led in expected.items():
        row = shown[node]
        assert (row["in"], row["out"], row["added"], row["dropped"]) == \
            (led["in"], led["out"], led["added"], sum(led["dropped"].values())), node
        assert row["reasons"] == led["dropped"], node
        assert row["status"] == "cached"
    # Every plot is there and drawn at a readable size: funnel; a histogram grid per perplexity filter; balance
    # and length; the confusion matrix and the training curves.
    plots = browser.evaluate("[...document.querySelectorAll('section')].map(s => [s.id, "
                             "[...s.querySelectorAll('.plot svg')].map(g => g.getBoundingClientRect().width)])")
    assert {sid: len(widths) for sid, widths in plots if widths} == \
        {"funnel": 1, "perplexity": 2, "balance": 2, "training": 2}
    assert all(w > 300 for _, widths in plots for w in widths)


@needs_browser
def test_a_drop_reason_in_the_funnel_opens_its_samples(built, tmp_path, browser):
    root, path, _ = built
    with _cwd(root):
        report = write_report(path.name, tmp_path / "report.html", "cache")
    browser.open(report.resolve().as_uri())
    target = "rej-unique--duplicate_of"
    assert browser.evaluate(f"document.getElementById('{target}').closest('details').open") is False
    browser.evaluate(f"document.querySelector('#funnel-table a[href=\"#{target}\"]').click()")
    browser.settle(0.3)
    assert browser.evaluate(f"document.getElementById('{target}').closest('details').open") is True
    top = browser.evaluate(f"document.getElementById('{target}').getBoundingClientRect().top")
    assert -1 < top < browser.evaluate("innerHeight")  # scrolled to it (to a sub-pixel: layout rounds)
    # A bar of the funnel chart is a link too (an SVG <a>); following it opens another node's samples.
    bar = browser.evaluate("[...document.querySelectorAll('#funnel svg a')].map(a => a.getAttribute('xlink:href'))")
    assert "#rej-kept--ppl_above_p90" in bar
    browser.evaluate("document.querySelector('#funnel svg a[*|href=\"#rej-kept--ppl_above_p90\"] path')"
                     ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    browser.settle(0.3)
    assert browser.evaluate("document.getElementById('rej-kept--ppl_above_p90').closest('details').open") is True
    assert browser.errors() == []


@needs_browser
def test_the_browser_check_sees_a_console_error_and_a_request(tmp_path, browser):
    """The harness itself: a page that logs an error and asks for an image must fail the checks above."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>'
                   '<img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body></html>')
    url = bad.resolve().as_uri()
    browser.open(url)
    browser.settle(1.0)
    assert any("boom" in e for e in browser.errors())
    assert "http://127.0.0.1:9/x.png" in browser.requests and browser.requests[0] == url


# --- the page itself ---

def test_the_page_is_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"(?!#|data:,)", page), "an external resource"
    assert not re.search(r"(src|href)=\"https?://", page)
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page  # inline SVG, not documents pasted in
    assert "@import" not in page and not re.search(r"url\((?!#)", page)  # SVG clip paths point inside the page


def test_the_same_cache_gives_the_same_page(built, page):
    root, path, _ = built
    with _cwd(root):
        assert build_report(path.name, "cache") == page


def test_rejected_rows_are_explained(built, page):
    _, _, runner = built
    rejects = section_html(page, "rejects")
    # a duplicate names its keeper, and the keeper's text is shown
    dropped = runner.rejects("unique")
    duplicate = dropped.filter(pc.starts_with(dropped["reason"], "duplicate_of"))["reason"][0].as_py()
    keeper_id = duplicate.split(":", 1)[1]
    block = re.search(r'id="rej-unique--duplicate_of">(.*?)</div>', rejects, re.S).group(1)
    assert f"kept <code>{keeper_id}</code>" in block
    # a label conflict shows both rows, with their two labels
    conflict = re.search(r'id="rej-unique--label_conflict">(.*?)</div>', rejects, re.S).group(1)
    assert conflict.count("] dropped:") >= 2 and "[pos]" in conflict and "[neg]" in conflict
    # a perplexity drop shows its score and the cut the filter applied
    cut = runner.rejects("kept")["reason"][0].as_py().split(":", 1)[1]
    ppl_block = re.search(r'id="rej-kept--ppl_above_p90">(.*?)</div>', rejects, re.S).group(1)
    assert re.search(rf"ppl [0-9.]+; cut {re.escape(cut)}", ppl_block)
    # every reason of every node has its block, reachable from the funnel
    for node, led in ledgers(runner).items():
        for reason in led["dropped"]:
            assert f'id="rej-{node}--{reason}"' in rejects
            assert f'href="#rej-{node}--{reason}"' in section_html(page, "funnel")


def table_rows(html: str) -> dict[str, list[str]]:
    """The rows of the first table in `html`, by their first cell, as the text of each cell."""
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S).group(1)
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S) for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]
    return {re.sub(r"<[^>]+>", "", cells[0]): [re.sub(r"<[^>]+>", "", c) for c in cells[1:]] for cells in rows}


def after(html: str, marker: str) -> str:
    return html[html.index(marker):]


def test_perplexity_shows_each_filters_cut_and_shares_per_label(built, page):
    _, _, runner = built
    ppl = section_html(page, "perplexity")
    assert "<h3>kept (ppl_filter)</h3>" in ppl and "<h3>aug_kept (ppl_filter)</h3>" in ppl
    scored = runner.output("scored")
    dropped = set(runner.rejects("kept")["id"].to_pylist())
    shown = table_rows(after(ppl, "<h3>kept (ppl_filter)</h3>"))
    for label in set(scored["label"].to_pylist()):
        ids = [i for i, y in zip(scored["id"].to_pylist(), scored["label"].to_pylist()) if y == label]
        gone = sum(i in dropped for i in ids)
        assert shown[label][:4] == [str(len(ids)), str(len(ids)), f"{1 - gone / len(ids):.1%}",
                                    f"{gone / len(ids):.1%}"], label
    cut = float(runner.rejects("kept")["reason"][0].as_py().split(":", 1)[1])
    assert f"cut {cut:g}" in ppl and "lowest perplexity" in ppl and "highest perplexity" in ppl


def test_balance_counts_each_label_before_and_after_rebalancing(built, page):
    _, _, runner = built
    balance = section_html(page, "balance")
    shown = table_rows(after(balance, "<h4>balanced"))

    def train_counts(table) -> dict:
        return {y: sum(1 for z, s in zip(table["label"].to_pylist(), table["split"].to_pylist())
                       if z == y and s == "train") for y in set(table["label"].to_pylist())}
    before, now = train_counts(runner.output("aug_unique")), train_counts(runner.output("balanced"))
    assert len(set(now.values())) == 1 and len(set(before.values())) > 1  # it did balance the classes
    for label in now:
        assert shown[label][:2] == [str(before[label]), str(now[label])], label
    assert "Text length per split" in balance


def test_backtranslation_counts_candidates_and_follows_the_added_rows(built, page):
    _, _, runner = built
    bt = section_html(page, "backtranslation")
    aug = {r.node: r for r in runner.plan()}["aug"].ledger
    candidates = table_rows(after(bt, "<h4>candidates"))
    assert candidates["added as rows"][0] == str(aug.added)
    assert candidates["candidates"][0] == str(aug.notes["bt_candidates"])
    added = [i for i in runner.output("aug")["id"].to_pylist() if "#bt" in i]
    reached = len(set(added) & set(runner.output("balanced")["id"].to_pylist()))
    assert table_rows(after(bt, "added rows later"))["reach balanced"][0] == str(reached)
    assert "<th>pivot</th>" in bt and "chrF" in bt and "distinct-2" in bt


def test_training_shows_the_adapters_scores_curves_and_cost(built, page):
    _, _, runner = built
    training = section_html(page, "training")
    metrics = json.loads((runner.model_dir("adapter") / "metrics.json").read_text())
    scores = table_rows(after(training, "scores on the"))
    assert scores["this adapter"] == [f"{metrics['accuracy']:.3f}", f"{metrics['macro_f1']:.3f}"]
    assert scores["baseline: tfidf_logreg"][1] == f"{metrics['baselines']['tfidf_logreg']['macro_f1']:.3f}"
    assert "confusion matrix" in training and "training curves" in training and "latency at batch 1" in training


def test_the_run_lists_every_node_with_its_key_and_warnings(built, page):
    _, _, runner = built
    run = section_html(page, "run")
    for r in runner.plan():
        row = re.search(rf'<tr data-node="{r.node}">(.*?)</tr>', run, re.S).group(1)
        assert r.key in row and "cached" in row
    adapter = re.search(r'<tr data-node="adapter">(.*?)</tr>', run, re.S).group(1)
    assert "lr 0.005 is outside the usual LoRA range" in adapter  # raised when its params are built
    from dataprep.train.baselines import verdict
    metrics = json.loads((runner.model_dir("adapter") / "metrics.json").read_text())
    lost = verdict("seq_cls", metrics, metrics["baselines"])  # what train_lora warned after training, if anything
    assert (lost is not None) == ("does not beat the tfidf_logreg baseline" in adapter)


def test_absent_data_is_one_line_per_section_never_a_crash(small_pipeline, workdir):
    """A pipeline with no perplexity, back-translation, rebalance or adapter, before and after it ran."""
    before = build_report(small_pipeline, "cache")
    assert not (workdir / "cache").exists()  # the report only reads: not even a directory is made
    assert "not run" in section_html(before, "funnel")
    assert "no row node is in the cache yet" in before
    Runner(load_pipeline(str(small_pipeline)), "cache").run()
    html = build_report(small_pipeline, "cache")
    for section_id, line in [("perplexity", "no node filters on perplexity"),
                             ("backtranslation", "no backtranslate node in the pipeline"),
                             ("training", "no train_lora node in the pipeline")]:
        assert f'<p class="omitted">{line}' in section_html(html, section_id)
    assert "no rebalance node in the pipeline" in section_html(html, "balance")
    assert 'data-node="kept"' in section_html(html, "funnel")


def test_cli_writes_the_report_and_help_stays_light(small_pipeline, workdir):
    Runner(load_pipeline(str(small_pipeline)), "cache").run()
    result = CliRunner().invoke(main, ["report", str(small_pipeline), "-o", "out.html", "--cache", "cache"])
    assert result.exit_code == 0, result.output
    written = (workdir / "out.html").read_text(encoding="utf-8")
    assert written.startswith("<!DOCTYPE html>") and "4 of 4 nodes in the cache" in written  # --cache was read
    assert "out.html" in result.output
    missing_dir = CliRunner().invoke(main, ["report", str(small_pipeline), "-o", "no/such/dir/r.html"])
    assert missing_dir.exit_code != 0 and "does not exist" in missing_dir.output
    probe = "import sys; from dataprep.cli import main; print(sorted({'matplotlib', 'pyarrow'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"  # `dataprep --help` imports neither the plots nor the data layer


def test_a_damaged_entry_is_named_and_never_read(small_pipeline, workdir):
    runner = Runner(load_pipeline(str(small_pipeline)), "cache")
    runner.run()
    part = runner.cache("up").parts()[0]
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes: only the checksum tells
    part.write_bytes(bytes(data))
    html = build_report(small_pipeline, "cache")
    row = re.search(r'<tr data-node="up">(.*?)</tr>', section_html(html, "funnel"), re.S).group(1)
    assert "corrupt (part-00000.parquet" in row and 'data-field="in">—<' in row
    assert re.search(r'data-node="up">.*?cache entry corrupt \(part-00000.parquet', section_html(html, "run"), re.S)
    assert 'data-node="kept"' in html and "too_short" in section_html(html, "rejects")  # the rest is shown


# --- variants ---

@pytest.fixture(scope="module")
def ablation(built):
    """A real `ablate` plan on the module's pipeline (rebalancing bypassed, two seeds) and the JSON it wrote."""
    from dataprep import variants as V
    root, path, _ = built
    with _cwd(root), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = V.plan_ablation(load_pipeline(path.name), "adapter", ["balanced"], seeds=2)
        results = V.run_plan(plan, root / "cache")
    _, js = V.write_results(results, root / "ablation.md")
    return js, results


def test_an_ablation_given_to_the_report_is_its_table_plot_and_reading(built, ablation):
    from dataprep import variants as V
    root, path, _ = built
    js, results = ablation
    with _cwd(root):
        html = build_report(path.name, "cache", variants=[js])
        none_given = build_report(path.name, "cache")
    part = section_html(html, "variants")
    head, rows = V.table_cells(results)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", part)
    assert cells == [esc(c) for row in rows for c in row]  # exactly the Markdown table's numbers
    assert [esc(h) for h in head] == re.findall(r"<th(?: [^>]*)?>(.*?)</th>", part)
    assert "ablation of adapter" in part and esc(V.footer(results)) in part and "<svg" in part
    s = results["variants"][1]["metrics"]["macro_f1"]
    beyond = abs(s["delta"]) > 2 * s["delta_se"]
    assert ("without balanced (" in part) == beyond and ("nothing here is distinguishable" in part) != beyond
    assert "ablation of" not in section_html(none_given, "variants") and "--variants" in none_given
    assert "measured on the variants of" not in part
    arranged = root / "arranged.json"  # the same name, another file: an arrangement built to be ablated
    arranged.write_text(json.dumps({**results, "source": "arranged.yaml"}), encoding="utf-8")
    with _cwd(root):
        other = section_html(build_report(path.name, "cache", variants=[arranged]), "variants")
    assert '<p class="warn">measured on the variants of arranged.yaml, a pipeline of the same name' in other


def test_variants_of_another_pipeline_or_not_results_are_refused(built, ablation, tmp_path):
    from dataprep.errors import ConfigError
    root, path, _ = built
    js, results = ablation
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**results, "pipeline": "elsewhere"}), encoding="utf-8")
    not_results = tmp_path / "metrics.json"
    not_results.write_text(json.dumps({"accuracy": 0.5}), encoding="utf-8")
    with _cwd(root):
        with pytest.raises(ConfigError, match=r"other.json: the variants of pipeline 'elsewhere', not of 'mini'"):
            build_report(path.name, "cache", variants=[other])
        with pytest.raises(ConfigError, match=r"metrics.json: not a results document .*no kind"):
            build_report(path.name, "cache", variants=[not_results])
        result = CliRunner().invoke(main, ["report", path.name, "--cache", "cache", "-o", str(tmp_path / "r.html"),
                                           "--variants", str(js)])
    assert result.exit_code == 0, result.output
    assert "without balanced" in section_html((tmp_path / "r.html").read_text(encoding="utf-8"), "variants")
