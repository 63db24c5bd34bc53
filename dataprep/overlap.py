"""Overlap I/O with compute: a reader that runs ahead on its own thread, a writer that runs behind on its own.

Arrow's JSON/CSV parsers and its Parquet/IPC writers release the GIL, so on a machine with a few cores a batch can
be parsed and another compressed while Python code (hashing, reject bookkeeping) works on a third. Both helpers
keep a bounded number of batches in flight, so memory stays a few batches, and both re-raise a worker's
exception in the caller's thread.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield what `items` yields, producing ahead on a background thread: `depth` items wait in the queue,
    one more may be in the making. When the consumer stops early, the producer stops after its current item
    and closes `items` (so a reader's file is closed then, not whenever the generator is collected)."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def produce() -> None:
        try:
            while not stop.is_set():
                item = next(items, _DONE)
                if not offer((item, None)) or item is _DONE:
                    return
        except BaseException as e:  # handed to the consumer, which re-raises it where it would have occurred
            offer((_DONE, e))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="dataprep-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:  # done, failed or abandoned: the producer sees `stop` within 50 ms of finishing its current item
        stop.set()
        if threading.current_thread() is not worker:
            worker.join()


class Behind:
    """Runs calls in submission order on one background thread, at most `depth` of them pending."""

    def __init__(self, depth: int = 2):
        self.depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataprep-writer")
        self._pending: deque[Future] = deque()

    def submit(self, call: Callable, *args) -> None:
        while len(self._pending) >= self.depth:
            self._pending.popleft().result()  # waits for room; re-raises the call's exception, if any
        self._pending.append(self._pool.submit(call, *args))

    def drain(self) -> None:
        """Wait for every pending call; re-raise the first failure."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
