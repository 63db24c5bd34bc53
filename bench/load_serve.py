"""Load test of `dataprep serve` on loopback: N concurrent clients, requests/s, p50/p95 latency, failures.

    .venv/bin/python bench/load_serve.py [--adapter DIR] [--clients 16] [--requests 40] [--items 4]

It starts the real command (`dataprep serve ADAPTER --port 0`, a subprocess), waits for its "serving" line,
then runs CLIENTS threads, each on one keep-alive connection, each sending REQUESTS well-formed POST /predict
requests of ITEMS texts from sample_data/zh_reviews.jsonl (normalized first, so none is refused),
while one more client sends malformed requests (bad JSON, wrong types, missing fields, too many items, a body
too large) throughout. It reports throughput and latency of the well-formed requests, how many of them failed
(anything but 200 with one prediction per text), the status codes the malformed ones got, and the server's own
batching counters (/metrics); then stops the server with SIGTERM and checks that it exits 0. With
`--baseline`, the same load runs again against a server with --max-batch 1 (every request its own model call),
the number micro-batching is measured against. The result is printed and written to bench/out/load_serve.json.

The adapter: --adapter DIR; else the sample pipeline's `adapter` node when it is cached; else one trained here
on sample_data/zh_reviews.jsonl (its 3,000 reviews, the pipeline's train_lora settings) on the pipeline's
`lm` node when that is cached, or on a tiny untrained GPT-2 otherwise (kept in bench/out/serve/).
Not a bench_*.py: `make bench` does not run it (it holds the machine for a minute and needs a free port).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "serve"
DATAPREP = [sys.executable, "-m", "dataprep.cli"]
SAMPLE = ROOT / "sample_data" / "zh_reviews.jsonl"
PIPELINE = ROOT / "pipelines" / "zh_reviews.yaml"
TRAIN_SETTINGS = {"r": 8, "alpha": 16, "lr": 0.0005, "epochs": 5, "batch_size": 32}  # the pipeline's adapter node


def node_dir(node: str) -> str | None:
    """Where the sample pipeline's NODE is cached, or None (`dataprep path`, run from the repository root)."""
    done = subprocess.run([*DATAPREP, "path", str(PIPELINE), node], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def tiny_base(texts: list[str]) -> str:
    """An untrained two-layer GPT-2 on a sentencepiece tokenizer of the sample texts (built once, offline)."""
    root = OUT / "tiny_base"
    if not (root / "config.json").is_file():
        import pyarrow as pa
        import torch
        from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

        from dataprep.models.tokenizer import TokenizerParams, train_tokenizer
        train_tokenizer.impl(lambda: iter([pa.table({"text": texts})]), TokenizerParams(vocab_size=2000), root)
        tok = AutoTokenizer.from_pretrained(root)
        torch.manual_seed(0)
        GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=64, n_layer=2, n_head=2,
                                   pad_token_id=tok.pad_token_id)).save_pretrained(root)
    return str(root)


def find_adapter(given: str | None, texts: list[str]) -> tuple[str, str]:
    """(adapter directory, where it came from)."""
    if given:
        return given, "given"
    cached = node_dir("adapter")
    if cached:
        return cached, "the sample pipeline's adapter node"
    adapter = OUT / "adapter"
    lm = node_dir("lm")
    origin = (f"trained here on {SAMPLE.name} on the pipeline's lm node" if lm else
              f"trained here on {SAMPLE.name} on a tiny untrained GPT-2 (the pipeline's lm node is not cached)")
    if not (adapter / "adapter_config.json").is_file():
        settings = [f"--set=base_model={lm or tiny_base(texts)}", *(f"--set={k}={v}" for k, v in
                                                                      TRAIN_SETTINGS.items())]
        print(f"training the adapter ({origin}) ...", file=sys.stderr)
        subprocess.run([*DATAPREP, "train", str(sample_rows()), "-o", str(adapter), "--cache-dir", str(OUT / "runs"),
                        *settings], cwd=ROOT, check=True)
    return str(adapter), origin


def sample_rows() -> Path:
    """The sample reviews as `normalize` leaves them (the rows `dataprep predict` would keep; `dataprep train`
    reads a file as it is, and the raw sample has rows without a label), written once as Parquet."""
    path = OUT / "reviews.parquet"
    if not path.is_file():
        from dataprep.io import write_table
        from dataprep.predict import read_prepared
        OUT.mkdir(parents=True, exist_ok=True)
        write_table(read_prepared(str(SAMPLE))[0], str(path))
    return path


# ------------------------------------------------------------------------------------------------ the server

def start(adapter: str, args, max_batch: int) -> tuple[subprocess.Popen, int]:
    cmd = [*DATAPREP, "serve", adapter, "--port", "0", "--threads", str(args.threads), "--max-batch",
           str(max_batch), "--batch-size", str(args.batch_size), "--max-wait-ms", str(args.max_wait_ms),
           "--max-items", str(args.max_items)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stderr:
        found = re.search(r"serving .* on http://127\.0\.0\.1:(\d+) ", line)
        if found:
            return proc, int(found.group(1))
    raise SystemExit(f"the server exited ({proc.wait()}) before it served")


def stop(proc: subprocess.Popen) -> tuple[int, float, str]:
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(60)
    return code, time.perf_counter() - started, proc.stderr.read()


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None):
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    response = conn.getresponse()
    return response.status, response.read()


def get_json(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        return json.loads(request(conn, "GET", path)[1])
    finally:
        conn.close()


def malformed_bodies(max_items: int) -> list[tuple[str, bytes]]:
    return [("not JSON", b'{"texts": ["unterminated'), ("empty body", b""),
            ("not an object", b'["a", "b"]'), ("missing field", b'{"text": "a"}'),
            ("wrong type", b'{"texts": "one string"}'), ("item not a string", b'{"texts": ["ok", 7]}'),
            ("unknown field", b'{"texts": ["ok"], "x": 1}'), ("empty after normalization", b'{"texts": ["  "]}'),
            ("too many items", json.dumps({"texts": ["好"] * (max_items + 1)}).encode()),
            ("body too large", json.dumps({"texts": ["好" * (1 << 19)]}).encode())]


# ------------------------------------------------------------------------------------------------ the load

def load(port: int, texts: list[str], args) -> dict:
    latencies: list[float] = []
    failures: list[str] = []
    malformed: dict[str, dict[int, int]] = {}
    lock = threading.Lock()
    done = threading.Event()

    def client(c: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for r in range(args.requests):
            k = (c * args.requests + r) * args.items
            batch = [texts[(k + j) % len(texts)] for j in range(args.items)]
            body = json.dumps({"texts": batch}, ensure_ascii=False).encode()
            started = time.perf_counter()
            try:
                status, data = request(conn, "POST", "/predict", body)
                ok = status == 200 and len(json.loads(data)["predictions"]) == len(batch)
                problem = None if ok else f"{status}: {data[:120]!r}"
            except (OSError, http.client.HTTPException) as e:
                problem = f"{type(e).__name__}: {e}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                latencies.append(time.perf_counter() - started)
                if problem:
                    failures.append(problem)
        conn.close()

    def bad_client() -> None:
        bodies = malformed_bodies(args.max_items)
        k = 0
        while not done.is_set() or k < len(bodies):  # every kind at least once, then on until the load ends
            name, body = bodies[k % len(bodies)]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)  # the server may close it (413)
            try:
                status = request(conn, "POST", "/predict", body)[0]
            except (OSError, http.client.HTTPException) as e:
                status = f"{type(e).__name__}"
            finally:
                conn.close()
            counts = malformed.setdefault(name, {})
            counts[status] = counts.get(status, 0) + 1
            k += 1
            time.sleep(0.01)

    warm = http.client.HTTPConnection("127.0.0.1", port, timeout=60)  # the first forward passes are slow: not timed
    for k in range(8):
        request(warm, "POST", "/predict", json.dumps({"texts": texts[k * args.items:(k + 1) * args.items]}).encode())
    warm.close()
    before = get_json(port, "/metrics")
    clients = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    bad = threading.Thread(target=bad_client)
    started = time.perf_counter()
    bad.start()
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    seconds = time.perf_counter() - started
    done.set()
    bad.join()
    after = get_json(port, "/metrics")
    batches = after["batches"] - before["batches"]
    ms = sorted(x * 1000 for x in latencies)
    return {
        "clients": args.clients, "requests": len(latencies), "items_per_request": args.items,
        "seconds": round(seconds, 2), "requests_per_s": round(len(latencies) / seconds, 1),
        "rows_per_s": round(len(latencies) * args.items / seconds, 1),
        "latency_ms": {"p50": round(statistics.median(ms), 1), "p95": round(ms[int(0.95 * (len(ms) - 1))], 1),
                       "p99": round(ms[int(0.99 * (len(ms) - 1))], 1), "max": round(ms[-1], 1)},
        "failed_well_formed": len(failures), "failure_examples": failures[:5],
        "malformed": {name: {str(k): v for k, v in counts.items()} for name, counts in malformed.items()},
        "malformed_all_4xx": all(isinstance(s, int) and 400 <= s < 500 for c in malformed.values() for s in c),
        "server": {"batches": batches,
                   "mean_requests_per_batch": round((after["batched_requests"] - before["batched_requests"])
                                                    / max(batches, 1), 2),
                   "multi_request_batches": after["multi_request_batches"] - before["multi_request_batches"],
                   "max_batch_requests": after["max_batch_requests"],
                   "model_seconds": round(after["model_seconds"] - before["model_seconds"], 2)},
    }


def run_one(adapter: str, texts: list[str], args, max_batch: int) -> dict:
    proc, port = start(adapter, args, max_batch)
    try:
        result = load(port, texts, args)
        result["healthy_after"] = get_json(port, "/health")["status"] == "ok"
        result["max_batch"] = max_batch
    finally:
        code, seconds, tail = stop(proc) if proc.poll() is None else (proc.returncode, 0.0, "")
    result["sigterm"] = {"exit_code": code, "seconds_to_exit": round(seconds, 2), "said": tail.strip()[-200:]}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", help="adapter directory (default: see the module doc)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=40, help="requests per client")
    ap.add_argument("--items", type=int, default=4, help="texts per request")
    ap.add_argument("--threads", type=int, default=1, help="the server's torch threads")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8, help="the server's rows per forward pass")
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--max-items", type=int, default=64)
    ap.add_argument("--baseline", action="store_true", help="also run with --max-batch 1 (no batching)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "load_serve.json"))
    args = ap.parse_args()

    import pyarrow.parquet as pq
    texts = pq.read_table(sample_rows(), columns=["text"])["text"].to_pylist()
    adapter, origin = find_adapter(args.adapter, texts)
    report = {"adapter": adapter, "adapter_origin": origin, "cpus": os.cpu_count(),
              "load_average": os.getloadavg()[0], "batched": run_one(adapter, texts, args, args.max_batch)}
    if args.baseline:
        report["unbatched"] = run_one(adapter, texts, args, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps(report, indent=2, ensure_ascii=False))
    ok = [r for k, r in report.items() if k in ("batched", "unbatched")]
    if any(r["failed_well_formed"] or not r["malformed_all_4xx"] or r["sigterm"]["exit_code"] for r in ok):
        raise SystemExit("load test FAILED: see above")


if __name__ == "__main__":
    main()
