"""`dataprep serve`: an adapter behind a small HTTP endpoint, with request micro-batching.

Routes (JSON in, JSON out; every error is `{"error": "<what is wrong>"}` with a 4xx or 5xx status):

- `POST /predict` `{"texts": ["...", ...]}` (seq_cls and causal_lm adapters) or `{"tokens": [["w", ...], ...]}`
  (token_cls) -> `{"predictions": [...]}`, one per item, in order: `{"label", "probs"}`, `{"tags",
  "truncated_tokens"}` or `{"generated"}` (the columns `Adapter.predict_table` appends). Texts are cleaned as
  `dataprep predict` cleans them (normalize's text defaults); tokens are used as given. The body is parsed as
  JSON whatever its Content-Type says.
- `GET /health` -> the task, the labels, the request field and the limits; `GET /metrics` -> counters
  (responses by status, batches, the most requests one batch held, queue depth, model seconds).

Status codes: 400 the body is not JSON; 413 the body is larger than `max_body_bytes` or holds more than
`max_items` items; 422 valid JSON of the wrong shape (not an object, a missing or unknown field, an item of the
wrong type, an empty text or sentence), the message naming the field and the index; 503 the queue holds
`max_queue_rows` rows already, or the server is shutting down; 500 the model failed on that request (logged;
the server serves on). A malformed request never reaches the model.

Batching: each valid request is queued whole; one worker thread (torch inference is neither async nor
thread-safe) takes the oldest request and adds the next ones while the batch stays within `max_batch` rows and
the oldest has waited less than `max_wait_ms`, runs them in one model call, and resolves each request's future.
One model call at a time; torch's thread count is set explicitly (`threads`). If a batch of several requests
fails, each request is rerun alone, so one request's failure is never its batch-mates'. Each row's result does
not depend on its batch-mates (up to float rounding: see dataprep/predict.py).

The model is a `Predictor`: anything with `task`, `labels` and `predict(items) -> list[dict]`. `AdapterPredictor`
serves a train_lora directory; an ONNX export directory (`dataprep export`) is served by the Predictor that
`dataprep.export.load_predictor(directory, threads=...)` returns.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import socket
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson

from dataprep.errors import ConfigError

log = logging.getLogger("dataprep.serve")

MAX_CONNECTIONS = 1024  # open connections + tasks before uvicorn answers 503 itself
GRACE_SECONDS = 10  # on SIGINT/SIGTERM: how long requests in flight may take before they are cancelled


class Predictor(Protocol):
    """What the server needs of a model. `task`: seq_cls, token_cls or causal_lm (token_cls reads `tokens`,
    the others `texts`); `predict` gets a batch of items (strings, or lists of strings for token_cls) and
    returns one JSON-ready dict per item, in order. It is only ever called from one thread at a time."""
    task: str
    labels: list[str]

    def predict(self, items: list) -> list[dict]: ...


def field_of(task: str) -> str:
    """The request field a task's items come in."""
    return "tokens" if task == "token_cls" else "texts"


@dataclass(frozen=True)
class Limits:
    max_batch: int = 32  # rows per model call (a request is never split: one larger than this runs alone)
    max_wait_ms: float = 5.0  # the longest the oldest queued request waits for batch-mates
    max_items: int = 64  # items per request (413 beyond)
    max_body_bytes: int = 1 << 20  # request body (413 beyond)
    max_queue_rows: int = 1024  # rows waiting for the model (503 beyond)

    def __post_init__(self):
        for name in ("max_batch", "max_items", "max_body_bytes", "max_queue_rows"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ConfigError(f"max_wait_ms must be at least 0, got {self.max_wait_ms}")
        if self.max_queue_rows < self.max_items:
            raise ConfigError(f"max_queue_rows ({self.max_queue_rows}) must hold one request of max_items "
                              f"({self.max_items})")


# ------------------------------------------------------------------------------------------------ models

class AdapterPredictor:
    """A train_lora adapter directory, through dataprep.predict.Adapter. A model call's rows are sorted by length
    and cut into forward passes of `batch_size` rows (Adapter's own batching): rows of one server batch come from
    unrelated requests, so one pass over all of them would pad every row to the longest. Measured on the sample
    adapter (CPU, 1 thread, calls of 32 mixed-length reviews; median of 3): 329 rows/s in passes of 8, 196 in one
    pass of 32, and 224 in unbatched calls of 4 rows (one request each)."""

    def __init__(self, adapter, threads: int = 1, batch_size: int = 8):
        self.adapter, self.threads, self.batch_size = adapter, threads, batch_size
        self.task, self.labels = adapter.task.name, list(adapter.labels)

    @classmethod
    def load(cls, directory: str | Path, base: str | None = None, threads: int = 1,
             batch_size: int = 8) -> AdapterPredictor:
        import torch

        from dataprep.predict import Adapter
        torch.set_num_threads(threads)
        return cls(Adapter.load(directory, base), threads, batch_size)

    def predict(self, items: list) -> list[dict]:
        import torch
        if torch.get_num_threads() != self.threads:  # the setting is per OS thread under OpenMP: set it here too
            torch.set_num_threads(self.threads)
        size = max(min(self.batch_size, len(items)), 1)
        if self.task == "token_cls":
            tags, truncated = self.adapter.tag(items, size)
            return [{"tags": t, "truncated_tokens": n} for t, n in zip(tags, truncated)]
        if self.task == "causal_lm":
            return [{"generated": g} for g in self.adapter.generate(items, size)]
        probs = self.adapter.probabilities(items, size)
        return [{"label": self.labels[int(row.argmax())], "probs": dict(zip(self.labels, row.tolist()))}
                for row in probs]


def load_predictor(directory: str | Path, base: str | None = None, threads: int = 1,
                   batch_size: int = 8) -> Predictor:
    """The Predictor for an adapter directory (train_lora's output) or an ONNX export directory."""
    directory = Path(directory)
    if (directory / "adapter_config.json").is_file():
        return AdapterPredictor.load(directory, base, threads, batch_size)
    if any(directory.glob("*.onnx")):
        if base is not None:
            raise ConfigError(f"{directory} is an ONNX export: --base applies to adapter directories only")
        try:
            from dataprep.export import load_predictor as load_export
            return load_export(directory, threads=threads)
        except ImportError as e:  # onnxruntime (or the tokenizer's library) is not installed
            raise ConfigError(f"serving the ONNX export {directory} needs {e.name or e}: install "
                              "dataprep[export]") from None
    raise ConfigError(f"{directory} is neither an adapter directory (train_lora writes adapter_config.json and "
                      "label_map.json there) nor an ONNX export (*.onnx)")


# ------------------------------------------------------------------------------------------------ batching

class Unavailable(Exception):
    """The queue is full or the server is stopping: the request is refused (503), not queued."""


@dataclass
class _Job:
    items: list
    future: Future
    queued_at: float


@dataclass
class Stats:
    batches: int = 0
    batched_requests: int = 0
    batched_rows: int = 0
    multi_request_batches: int = 0  # batches that held more than one request
    max_batch_requests: int = 0
    max_batch_rows: int = 0
    failed_requests: int = 0  # requests the model failed on (answered 500)
    model_seconds: float = 0.0
    responses: dict = field(default_factory=dict)  # status code (as a string) -> count


class Batcher:
    """Requests in, one model call per batch out, on one worker thread (see the module doc)."""

    def __init__(self, predictor: Predictor, limits: Limits):
        self.predictor, self.limits = predictor, limits
        self.stats = Stats()
        self._jobs: collections.deque[_Job] = collections.deque()
        self._rows = 0  # rows queued, not yet taken by the worker
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="dataprep-serve-model", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float | None = None) -> None:
        """Refuse new requests, finish the queued ones, stop the worker."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def queued_rows(self) -> int:
        return self._rows

    def submit(self, items: list) -> Future:
        job = _Job(items, Future(), time.monotonic())
        with self._cv:
            if self._closed:
                raise Unavailable("the server is shutting down")
            if self._rows and self._rows + len(items) > self.limits.max_queue_rows:
                raise Unavailable(f"the queue is full ({self._rows} rows waiting, max_queue_rows "
                                  f"{self.limits.max_queue_rows}); retry later")
            self._jobs.append(job)
            self._rows += len(items)
            self._cv.notify()
        return job.future

    def _next_batch(self) -> list[_Job] | None:
        """The oldest request and the next ones that fit in max_batch rows, waiting for them until the oldest
        has waited max_wait_ms; None once closed and drained."""
        with self._cv:
            while not self._jobs and not self._closed:
                self._cv.wait()
            if not self._jobs:
                return None
            batch = [self._jobs.popleft()]
            rows = len(batch[0].items)
            deadline = batch[0].queued_at + self.limits.max_wait_ms / 1000
            while rows < self.limits.max_batch:
                if self._jobs:
                    if rows + len(self._jobs[0].items) > self.limits.max_batch:
                        break
                    batch.append(self._jobs.popleft())
                    rows += len(batch[-1].items)
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    break
                self._cv.wait(left)
            self._rows -= rows
            return batch

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [job for job in batch if job.future.set_running_or_notify_cancel()]  # skip abandoned ones
            if live:
                self._run(live)

    def _run(self, jobs: list[_Job]) -> None:
        items = [item for job in jobs for item in job.items]
        start = time.perf_counter()
        try:
            results = self._predict(items)
        except Exception as e:  # noqa: BLE001 - a model failure is a 500 for its requests, never the worker's end
            if len(jobs) > 1:  # find the request that fails: its batch-mates still get their answers
                for job in jobs:
                    self._run([job])
                return
            log.exception("prediction failed on a request of %d items", len(items))
            self.stats.failed_requests += 1
            jobs[0].future.set_exception(e)
            return
        s = self.stats
        s.model_seconds += time.perf_counter() - start
        s.batches += 1
        s.batched_requests += len(jobs)
        s.batched_rows += len(items)
        s.multi_request_batches += len(jobs) > 1
        s.max_batch_requests = max(s.max_batch_requests, len(jobs))
        s.max_batch_rows = max(s.max_batch_rows, len(items))
        k = 0
        for job in jobs:
            job.future.set_result(results[k:k + len(job.items)])
            k += len(job.items)

    def _predict(self, items: list) -> list[dict]:
        results = self.predictor.predict(items)
        if len(results) != len(items):
            raise RuntimeError(f"the model returned {len(results)} results for {len(items)} items")
        return results


# ------------------------------------------------------------------------------------------------ requests

class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


_JSON_TYPES = {str: "a string", int: "a number", float: "a number", bool: "a boolean", type(None): "null",
               list: "an array", dict: "an object"}


def _kind(value) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _example(name: str) -> str:
    return '{"texts": ["..."]}' if name == "texts" else '{"tokens": [["word", ...]]}'


def parse_request(body: bytes, task: str, max_items: int) -> list:
    """The items of a /predict body, or a RequestError saying exactly what is wrong with it."""
    name = field_of(task)
    if not body.strip():
        raise RequestError(400, f"the body is empty: send a JSON object, {_example(name)}")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise RequestError(400, f"the body is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise RequestError(422, f"the body must be a JSON object, {_example(name)}; got {_kind(doc)}")
    if name not in doc:
        other = "tokens" if name == "texts" else "texts"
        hint = f" (this is a {task} adapter: it reads {name}, not {other})" if other in doc else ""
        raise RequestError(422, f"missing field {name!r}{hint}: send {_example(name)}")
    unknown = sorted(set(doc) - {name})
    if unknown:
        raise RequestError(422, f"unknown field {unknown[0]!r} (the only field is {name!r})")
    items = doc[name]
    if not isinstance(items, list):
        raise RequestError(422, f"{name} must be an array, got {_kind(items)}")
    if len(items) > max_items:
        raise RequestError(413, f"{name} has {len(items)} items, more than max_items={max_items} per request: "
                                "split it into several requests")
    for i, item in enumerate(items):
        if name == "texts":
            if not isinstance(item, str):
                raise RequestError(422, f"texts[{i}] must be a string, got {_kind(item)}")
            continue
        if not isinstance(item, list):
            raise RequestError(422, f"tokens[{i}] must be an array of strings, got {_kind(item)}")
        if not item:
            raise RequestError(422, f"tokens[{i}] is empty: a sentence needs at least one token")
        for j, token in enumerate(item):
            if not isinstance(token, str):
                raise RequestError(422, f"tokens[{i}][{j}] must be a string, got {_kind(token)}")
            if not token.strip():
                raise RequestError(422, f"tokens[{i}][{j}] is blank: a token needs a visible character")
    return prepare_texts(items) if name == "texts" else items


def prepare_texts(texts: list[str]) -> list[str]:
    """Texts cleaned as training texts were by `normalize` with its defaults (as `dataprep predict` does); an
    item with nothing left is refused (422), as normalize would have dropped it (`empty_text`)."""
    if not texts:
        return texts
    import pyarrow as pa

    from dataprep.stages.normalize import NormalizeParams, clean_text
    # orjson has refused invalid UTF-8 and lone surrogate escapes (\ud800) already: every item is text
    cleaned = clean_text(pa.array(texts, pa.string()), NormalizeParams()).to_pylist()
    for i, text in enumerate(cleaned):
        if not text:
            raise RequestError(422, f"texts[{i}] is empty after normalization (was {texts[i][:40]!r})")
    return cleaned


# ------------------------------------------------------------------------------------------------ the app

def _json(doc, status: int = 200):
    from starlette.responses import Response
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json")


async def _read_body(request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to exceed `limit`: by its Content-Length, or while it
    streams in (chunked); never read whole into memory first."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body has {int(declared)} bytes, more than max_body_bytes={limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body is larger than max_body_bytes={limit}")
        chunks.append(chunk)
    return b"".join(chunks)


def make_app(predictor: Predictor, batcher: Batcher, limits: Limits, on_ready=None):
    """The ASGI app: the routes of the module doc over `batcher` (started and closed by the app's lifespan)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    info = {"task": predictor.task, "labels": predictor.labels, "field": field_of(predictor.task),
            "limits": {k: getattr(limits, k) for k in Limits.__dataclass_fields__}}

    async def health(request):
        return _json({"status": "ok", **info})

    async def metrics(request):
        return _json({**batcher.stats.__dict__, "queued_rows": batcher.queued_rows})

    async def predict(request):
        items = parse_request(await _read_body(request, limits.max_body_bytes), predictor.task, limits.max_items)
        if not items:
            return _json({"predictions": []})
        try:
            future = batcher.submit(items)
        except Unavailable as e:
            raise RequestError(503, str(e)) from None
        try:
            results = await asyncio.wrap_future(future)
        except Exception as e:  # noqa: BLE001 - the model failed on this request (logged by the worker)
            raise RequestError(500, f"prediction failed: {type(e).__name__}: {e}") from None
        return _json({"predictions": results})

    async def request_error(request, exc: RequestError):
        return _json({"error": exc.message}, exc.status)

    async def http_error(request, exc: HTTPException):  # 404, 405: JSON like every other answer
        return _json({"error": f"{exc.detail}: {request.method} {request.url.path} (routes: POST /predict, "
                               "GET /health, GET /metrics)"}, exc.status_code)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        batcher.start()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:  # uvicorn has let the requests in flight finish: nothing new is coming
            await asyncio.get_running_loop().run_in_executor(None, batcher.close, GRACE_SECONDS)

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health),
                            Route("/metrics", metrics)],
                    exception_handlers={RequestError: request_error, HTTPException: http_error},
                    lifespan=lifespan)
    return _CountStatus(app, batcher.stats)


class _CountStatus:
    """ASGI middleware: counts responses by status code into stats.responses."""

    def __init__(self, app, stats: Stats):
        self.app, self.stats = app, stats

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counting(message):
            if message["type"] == "http.response.start":
                key = str(message["status"])
                self.stats.responses[key] = self.stats.responses.get(key, 0) + 1
            await send(message)
        await self.app(scope, receive, counting)


# ------------------------------------------------------------------------------------------------ the server

def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one; `.getsockname()` says which)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(2048)  # connections made before uvicorn accepts wait here, instead of being refused
    return sock


class Server:
    """`predictor` served on host:port. `run()` blocks until SIGINT/SIGTERM (in the main thread) or `stop()`;
    either way requests in flight are answered and queued batches run before it returns."""

    def __init__(self, predictor: Predictor, limits: Limits | None = None, host: str = "127.0.0.1",
                 port: int = 8000, access_log: bool = False, announce=None):
        import uvicorn

        self.limits = limits or Limits()
        self.sock = bind(host, port)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.batcher = Batcher(predictor, self.limits)
        self.ready = threading.Event()

        def on_ready():
            self.ready.set()
            if announce is not None:
                announce(self)
        self.app = make_app(predictor, self.batcher, self.limits, on_ready)
        config = uvicorn.Config(self.app, loop="asyncio", http="h11", lifespan="on", access_log=access_log,
                                log_level="info" if access_log else "warning", limit_concurrency=MAX_CONNECTIONS,
                                timeout_graceful_shutdown=GRACE_SECONDS)
        self._uvicorn = _quiet_uvicorn(config)

    @property
    def url(self) -> str:
        return f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"

    def run(self) -> None:
        try:
            self._uvicorn.run(sockets=[self.sock])
        finally:
            self.sock.close()
            self.batcher.close(GRACE_SECONDS)  # when startup failed, the lifespan never closed it

    def stop(self) -> None:
        self._uvicorn.should_exit = True

    @property
    def stopped_by(self) -> str | None:
        return self._uvicorn.signal_name


def _quiet_uvicorn(config):
    """A uvicorn.Server whose SIGINT/SIGTERM handling ends `run()` normally, instead of re-raising the signal
    after the graceful shutdown (uvicorn's default, which turns Ctrl-C into click's `Aborted!` and exit 1). A
    second Ctrl-C stops at once. Signals are caught only in the main thread (a server in a test thread has none)."""
    import uvicorn

    class Quiet(uvicorn.Server):
        signal_name: str | None = None

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return

            def handle(sig, frame):
                self.signal_name = signal.Signals(sig).name
                self.force_exit = self.should_exit and sig == signal.SIGINT
                self.should_exit = True
            previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
    return Quiet(config)


def announce(server: Server, directory: str | Path | None = None) -> None:
    """The line `dataprep serve` prints on stderr once it accepts requests (scripts read the port from it)."""
    p, lim = server.batcher.predictor, server.limits
    what = f"{directory} " if directory is not None else ""
    print(f"serving {what}({p.task}: {', '.join(p.labels[:8])}{' ...' if len(p.labels) > 8 else ''}) on "
          f"{server.url} (POST /predict, GET /health, GET /metrics; max_batch {lim.max_batch}, max_wait_ms "
          f"{lim.max_wait_ms:g}); Ctrl-C to stop", file=sys.stderr, flush=True)
