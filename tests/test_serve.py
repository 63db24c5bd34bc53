"""`dataprep serve` (dataprep/serve.py): real HTTP on loopback against a server in a thread (or, for the command,
a subprocess): the health route, predictions equal to Adapter.predict_table's, concurrent clients batched
together, every malformed request a 4xx while the server serves on, a failing request isolated from its
batch-mates, a full queue refused, and a graceful stop."""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings

import pyarrow.compute as pc
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from test_predict import ner_rows  # noqa: E402
from test_train import base_model, cls_rows, params  # noqa: E402,F401  (base_model is a fixture)

from dataprep.predict import Adapter  # noqa: E402
from dataprep.serve import AdapterPredictor, Limits, Server  # noqa: E402
from dataprep.train.lora import Data, train  # noqa: E402

LIMITS = dict(max_batch=16, max_wait_ms=20, max_items=8, max_body_bytes=4096, max_queue_rows=256)


@contextlib.contextmanager
def serving(predictor, **limits):
    """`predictor` served on a free loopback port by a server in a thread of this process, stopped after."""
    server = Server(predictor, Limits(**{**LIMITS, **limits}), host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    assert server.ready.wait(30), "the server did not start"
    try:
        yield server
    finally:
        server.stop()
        thread.join(30)
        assert not thread.is_alive(), "the server did not stop"


def call(port: int, method: str, path: str, body=None, headers: dict | None = None) -> tuple[int, dict]:
    """One real HTTP request on its own connection: (status, the JSON answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if isinstance(body, dict | list):
            body = json.dumps(body, ensure_ascii=False).encode()
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        assert response.getheader("content-type", "").startswith("application/json"), data[:200]
        return response.status, json.loads(data)
    finally:
        conn.close()


def post(port: int, doc) -> tuple[int, dict]:
    return call(port, "POST", "/predict", doc, {"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def cls_adapter(base_model, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("serve") / "adapter"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tiny model need not beat the TF-IDF baseline to be served
        train(params(base_model), Data.from_tables([cls_rows()], "auto"), root)
    return root


@pytest.fixture(scope="module")
def cls_server(cls_adapter):
    with serving(AdapterPredictor.load(cls_adapter)) as server:
        yield server


def test_the_health_route_says_what_the_server_reads_and_its_limits(cls_server):
    status, health = call(cls_server.port, "GET", "/health")
    assert status == 200 and health["status"] == "ok"
    assert (health["task"], health["labels"], health["field"]) == ("seq_cls", ["neg", "pos"], "texts")
    assert health["limits"] == LIMITS


def test_predictions_are_those_of_predict_table(cls_server, cls_adapter):
    table = cls_rows(24, seed=5)
    expected = Adapter.load(cls_adapter).predict_table(table)
    texts = table["text"].to_pylist()
    got = []
    for k in range(0, len(texts), 8):
        status, answer = post(cls_server.port, {"texts": texts[k:k + 8]})
        assert status == 200, answer
        got += answer["predictions"]
    assert [p["label"] for p in got] == expected["pred_label"].to_pylist()
    for ours, theirs in zip(got, expected["probs"].to_pylist()):
        assert ours["probs"].keys() == theirs.keys()
        assert all(abs(ours["probs"][k] - theirs[k]) < 1e-6 for k in theirs)


def test_concurrent_clients_all_get_their_own_answers_in_shared_batches(cls_server, cls_adapter):
    table = cls_rows(40, seed=7)
    texts = table["text"].to_pylist()
    expected = dict(zip(texts, Adapter.load(cls_adapter).predict_table(table)["pred_label"].to_pylist()))
    before = call(cls_server.port, "GET", "/metrics")[1]
    failures, answered = [], []

    def client(c: int):
        for r in range(10):
            batch = [texts[(c * 10 + r + k) % len(texts)] for k in range(1 + (c + r) % 3)]
            status, answer = post(cls_server.port, {"texts": batch})
            if status != 200 or [p["label"] for p in answer["predictions"]] != [expected[t] for t in batch]:
                failures.append((c, r, status, answer))
            answered.append(len(batch))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == [] and len(answered) == 80
    after = call(cls_server.port, "GET", "/metrics")[1]
    assert after["batched_requests"] - before["batched_requests"] == 80
    assert after["batched_rows"] - before["batched_rows"] == sum(answered)
    assert after["multi_request_batches"] > before["multi_request_batches"] and after["max_batch_requests"] > 1
    assert after["max_batch_rows"] <= max(LIMITS["max_batch"], LIMITS["max_items"])
    assert after["batches"] - before["batches"] < 80  # fewer model calls than requests


MALFORMED = [
    (b"{broken", 400, "the body is not valid JSON"),
    (b"", 400, "the body is empty"),
    (b'{"texts": ["\xff"]}', 400, "not valid UTF-8"),
    (b'{"texts": ["\\ud800"]}', 400, "surrogate"),
    (b"[1, 2]", 422, "the body must be a JSON object"),
    (b"{}", 422, "missing field 'texts'"),
    (b'{"tokens": [["a"]]}', 422, "it reads texts, not tokens"),
    (b'{"texts": "abc"}', 422, "texts must be an array, got a string"),
    (b'{"texts": ["ok", 3]}', 422, "texts[1] must be a string, got a number"),
    (b'{"texts": [null]}', 422, "texts[0] must be a string, got null"),
    (b'{"texts": [true]}', 422, "texts[0] must be a string, got a boolean"),
    (b'{"texts": ["ok"], "labels": ["pos"]}', 422, "unknown field 'labels'"),
    (b'{"texts": ["ok", " \\u3000 "]}', 422, "texts[1] is empty after normalization"),
    (json.dumps({"texts": ["x"] * 9}).encode(), 413, "texts has 9 items, more than max_items=8"),
    (json.dumps({"texts": ["x" * 5000]}).encode(), 413, "more than max_body_bytes=4096"),
]


@pytest.mark.parametrize("body, status, message", MALFORMED, ids=[m[2][:30] for m in MALFORMED])
def test_a_malformed_request_is_a_4xx_naming_the_problem_and_never_reaches_the_model(cls_server, body, status,
                                                                                     message):
    before = call(cls_server.port, "GET", "/metrics")[1]
    got, answer = post(cls_server.port, body)
    assert (got, message in answer["error"]) == (status, True), answer
    assert call(cls_server.port, "GET", "/metrics")[1]["batched_requests"] == before["batched_requests"]
    assert post(cls_server.port, {"texts": ["房间很好"]})[0] == 200  # and the server serves on


def test_a_chunked_body_is_cut_off_at_the_limit(cls_server):
    chunks = iter([b'{"texts": ["' + b"x" * 1000] * 6 + [b'"]}'])  # no Content-Length: Transfer-Encoding chunked
    status, answer = call(cls_server.port, "POST", "/predict", chunks)
    assert status == 413 and "larger than max_body_bytes=4096" in answer["error"]
    assert post(cls_server.port, {"texts": ["房间很好"]})[0] == 200


def test_unknown_routes_and_methods_answer_json(cls_server):
    assert call(cls_server.port, "GET", "/predict")[0] == 405
    status, answer = call(cls_server.port, "GET", "/nope")
    assert status == 404 and "POST /predict" in answer["error"]


def test_an_empty_list_is_an_empty_answer(cls_server):
    assert post(cls_server.port, {"texts": []}) == (200, {"predictions": []})


# --- the server around any Predictor: no model needed ---------------------------------------------------

class Echo:
    """A Predictor that answers each text with itself, slowly if asked, failing on "boom", waiting on `gate`."""
    task, labels = "seq_cls", ["a", "b"]

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None, task: str = "seq_cls"):
        self.delay, self.gate, self.task, self.calls = delay, gate, task, []

    def predict(self, items):
        self.calls.append(len(items))
        if self.gate is not None:
            self.gate.wait(30)
        time.sleep(self.delay)
        if "boom" in items:
            raise ValueError("no boom allowed")
        return [{"echo": x} for x in items]


def test_a_request_the_model_fails_on_is_a_500_and_its_batch_mates_are_answered():
    echo = Echo(delay=0.05)
    with serving(echo, max_wait_ms=100) as server:
        results = {}

        def client(text):
            results[text] = post(server.port, {"texts": [text, "tail"]})

        threads = [threading.Thread(target=client, args=(t,)) for t in ("one", "boom", "two", "three")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results["boom"][0] == 500 and "no boom allowed" in results["boom"][1]["error"]
        for text in ("one", "two", "three"):
            assert results[text] == (200, {"predictions": [{"echo": text}, {"echo": "tail"}]})
        metrics = call(server.port, "GET", "/metrics")[1]
        assert metrics["failed_requests"] == 1 and metrics["responses"]["500"] == 1
        assert max(echo.calls) > 2  # they were batched, then rerun one by one
        assert post(server.port, {"texts": ["after"]}) == (200, {"predictions": [{"echo": "after"}]})


def test_a_full_queue_is_503_and_a_stop_answers_the_requests_in_flight_first():
    gate = threading.Event()
    echo = Echo(gate=gate)
    with serving(echo, max_items=2, max_queue_rows=2, max_batch=2, max_wait_ms=0) as server:
        results = []
        first = threading.Thread(target=lambda: results.append(post(server.port, {"texts": ["a", "b"]})))
        first.start()
        while not echo.calls:  # taken by the worker, which waits at the gate
            time.sleep(0.01)
        queued = threading.Thread(target=lambda: results.append(post(server.port, {"texts": ["c", "d"]})))
        queued.start()
        while server.batcher.queued_rows < 2:
            time.sleep(0.01)
        status, answer = post(server.port, {"texts": ["e"]})
        assert status == 503 and "the queue is full" in answer["error"]
        server.stop()  # stops accepting; what is queued and in flight is still answered
        gate.set()
        first.join(30)
        queued.join(30)
    assert sorted(results, key=json.dumps) == [(200, {"predictions": [{"echo": "a"}, {"echo": "b"}]}),
                               (200, {"predictions": [{"echo": "c"}, {"echo": "d"}]})]


@pytest.mark.parametrize("doc, message", [
    ({"tokens": [["a", "b"], "c d"]}, "tokens[1] must be an array of strings, got a string"),
    ({"tokens": [["a"], []]}, "tokens[1] is empty"),
    ({"tokens": [["a", 1]]}, "tokens[0][1] must be a string, got a number"),
    ({"tokens": [["a", " "]]}, "tokens[0][1] is blank"),
    ({"texts": ["a b"]}, "it reads tokens, not texts"),
])
def test_token_requests_are_validated_to_each_token(doc, message):
    with serving(Echo(task="token_cls")) as server:
        status, answer = post(server.port, doc)
        assert status == 422 and message in answer["error"], answer
        assert post(server.port, {"tokens": [["a", "b"]]}) == (200, {"predictions": [{"echo": ["a", "b"]}]})


def test_a_token_cls_adapter_tags_each_token_as_adapter_tag_does(base_model, tmp_path):  # noqa: F811
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it need not beat the most-frequent-tag baseline to be served
        train(params(base_model, epochs=2), Data.from_tables([ner_rows()], "auto"), tmp_path / "ner")
    sentences = ner_rows().filter(pc.equal(ner_rows()["split"], "test"))["tokens"].to_pylist()[:6]
    sentences.append(["上", "海"] * 40)  # longer than max_len: the tail is O, counted
    tags, truncated = Adapter.load(tmp_path / "ner").tag(sentences)
    with serving(AdapterPredictor.load(tmp_path / "ner")) as server:
        status, answer = post(server.port, {"tokens": sentences})
    assert status == 200, answer
    assert [p["tags"] for p in answer["predictions"]] == tags
    assert [p["truncated_tokens"] for p in answer["predictions"]] == truncated and truncated[-1] > 0


def test_an_onnx_export_is_served_with_the_adapters_labels(cls_adapter, tmp_path):
    pytest.importorskip("onnxruntime")
    export = pytest.importorskip("dataprep.export")
    from dataprep.serve import load_predictor
    export.export(cls_adapter, tmp_path / "onnx")
    table = cls_rows(16, seed=9)
    expected = Adapter.load(cls_adapter).predict_table(table)["pred_label"].to_pylist()
    with serving(load_predictor(tmp_path / "onnx")) as server:
        assert call(server.port, "GET", "/health")[1]["labels"] == ["neg", "pos"]
        texts = table["text"].to_pylist()
        got = [p["label"] for k in (0, 8) for p in post(server.port, {"texts": texts[k:k + 8]})[1]["predictions"]]
    assert got == expected


# --- the command ----------------------------------------------------------------------------------------

def test_the_command_serves_until_sigterm_and_stops_cleanly(cls_adapter, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(cls_adapter, moved)  # served from a copy: nothing may point back
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dataprep.cli", "serve", str(moved), "--port", "0",
                             "--max-wait-ms", "1"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "serving" not in line:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "the server exited before it served"
        port = int(re.search(r"http://127\.0\.0\.1:(\d+) ", line).group(1))
        assert "(seq_cls: neg, pos)" in line
        assert call(port, "GET", "/health")[1]["labels"] == ["neg", "pos"]
        status, answer = post(port, {"texts": ["房间很好"]})
        assert status == 200 and answer["predictions"][0]["label"] in ("neg", "pos")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        rest = proc.stderr.read()
        assert "stopped on SIGTERM: 1 requests predicted" in rest and "Traceback" not in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_directory_that_is_neither_adapter_nor_export_is_one_line(tmp_path):
    from click.testing import CliRunner

    from dataprep.cli import main
    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {tmp_path} is neither an adapter directory")
