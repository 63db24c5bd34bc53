"""Length-grouped batching: the one helper every model stage batches with.

Sorting rows by length before cutting batches keeps padding (and so wasted compute) small. Scoring and
translation sort everything; training sorts only inside windows of a shuffled order, so batches still differ
from epoch to epoch. Python's sort is stable, so ties keep the order they came in and the result is a
function of the lengths and that order only.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

# Training sorts inside windows of this many batches' worth of shuffled rows: enough to group lengths, few
# enough that the batches of one epoch still mix short and long texts from all over the data.
WINDOW = 50


def sorted_batches(indices: Sequence[int], lengths: Sequence[int], *, size: int | None = None,
                   fits: Callable[[int, int], bool] | None = None, longest_first: bool = False) -> list[list[int]]:
    """`indices` sorted by length and cut into batches: of `size` rows, or as many rows as `fits(rows,
    longest)` allows (a budget on the padded batch; a row that alone exceeds it still gets a batch)."""
    if (size is None) == (fits is None):
        raise ValueError("give one of size or fits")
    order = sorted(indices, key=lengths.__getitem__, reverse=longest_first)
    if size is not None:
        return [order[i:i + size] for i in range(0, len(order), size)]
    batches: list[list[int]] = []
    batch: list[int] = []
    for i in order:
        longest = max(lengths[batch[0]], lengths[i]) if batch else lengths[i]
        if batch and not fits(len(batch) + 1, longest):
            batches.append(batch)
            batch = []
        batch.append(i)
    if batch:
        batches.append(batch)
    return batches


def windowed_batches(order: Sequence[int], lengths: Sequence[int], size: int, *, window: int = WINDOW,
                     longest_first: bool = False) -> list[list[list[int]]]:
    """The training grouping: cut a shuffled `order` into windows of `window` batches' worth of rows and
    length-sort each; one list of batches per window (the caller decides how to arrange them)."""
    span = size * window
    return [sorted_batches(order[start:start + span], lengths, size=size, longest_first=longest_first)
            for start in range(0, len(order), span)]


def interleave(n: int) -> list[int]:
    """0, n-1, 1, n-2, ...: alternate long and short batches (deterministic, no random draws)."""
    return [i // 2 if i % 2 == 0 else n - 1 - i // 2 for i in range(n)]
