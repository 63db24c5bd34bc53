"""Overlap I/O with compute: a reader that runs ahead on its own thread, a writer that runs behind on its own.

Arrow's JSON/CSV parsers and its Parquet/IPC writers release the GIL, so on a machine with a few cores a batch can
be parsed and another compressed while Python code (hashing, reject bookkeeping) works on a third. Both helpers
keep at most `depth` batches in flight, so memory stays a few batches, and both re-raise a worker's exception
in the caller's thread.
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
    """Yield what `items` yields, producing up to `depth` items ahead on a background thread."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put((item, None))
            slots.put((_DONE, None))
        except BaseException as e:  # handed to the consumer, which re-raises it where it would have occurred
            slots.put((_DONE, e))

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
    finally:  # the consumer stopped early (or failed): let the producer finish its current item and leave
        stop.set()
        while worker.is_alive():
            try:
                slots.get(timeout=0.05)
            except queue.Empty:
                pass


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
