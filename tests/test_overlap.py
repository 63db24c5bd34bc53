"""The read-ahead and write-behind helpers: order kept, errors surface in the caller, nothing left running."""
from __future__ import annotations

import threading
import time

import pytest

from dataprep.overlap import Behind, prefetch


def test_prefetch_yields_everything_in_order():
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))


def test_prefetch_reraises_the_producers_error_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("bad line")

    seen = []
    with pytest.raises(ValueError, match="bad line"):
        for item in prefetch(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_prefetch_runs_ahead_but_only_depth_items():
    produced = []

    def items():
        for i in range(10):
            produced.append(i)
            yield i

    stream = prefetch(items(), depth=2)
    assert next(stream) == 0
    time.sleep(0.2)  # the producer fills the queue, then blocks
    assert 2 <= len(produced) <= 4  # one taken + two queued + one waiting to be put
    stream.close()


def test_a_consumer_that_stops_early_leaves_no_thread_behind():
    before = threading.active_count()
    stream = prefetch(iter(range(1000)), depth=2)
    assert next(stream) == 0
    stream.close()
    time.sleep(0.1)
    assert threading.active_count() == before


def test_a_consumer_that_stops_early_closes_the_source_generator():
    closed = threading.Event()

    def items():
        try:
            yield from range(1000)
        finally:  # a reader's `with open(...)` exits here
            closed.set()

    stream = prefetch(items(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert closed.is_set()  # by the time close() returns, not whenever the generator is collected


def test_behind_runs_calls_in_order_on_another_thread():
    out, main = [], threading.get_ident()
    behind = Behind(depth=2)
    for i in range(50):
        behind.submit(lambda i=i: out.append((i, threading.get_ident() != main)))
    behind.drain()
    assert [i for i, _ in out] == list(range(50)) and all(other for _, other in out)


def test_behind_reraises_a_failed_call_in_the_caller():
    behind = Behind(depth=1)
    behind.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        behind.submit(lambda: None)  # waits for room, finds the failure
        behind.drain()
