"""Per-node bookkeeping: rows in, out, added, and dropped by reason — and the check that they balance.

A reason is `code` or `code:detail` (`duplicate_of:a.jsonl:17`); the ledger counts by code, the rejects file
keeps the detail.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.errors import LedgerError
from dataprep.outcome import Outcome


@dataclass
class Ledger:
    rows_in: int = 0
    rows_out: int = 0
    added: int = 0
    dropped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)  # what stages changed without dropping (e.g. repaired)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def record(self, outcome: Outcome, rows_in: int | None = None, node: str = "") -> None:
        """Count one batch. `rows_in=None` (sources) means the input is what was kept plus rejected.
        Otherwise each input row must come out kept or rejected: a stage that loses rows fails here."""
        kept, rejected = outcome.kept.num_rows, outcome.rejected.num_rows
        if rows_in is None:
            rows_in = kept + rejected
        elif kept + rejected != rows_in:
            raise LedgerError(f"node {node!r}: a batch of {rows_in} rows came back as {kept} kept + "
                              f"{rejected} rejected; rows were lost or invented")
        self.rows_in += rows_in
        self.rows_out += outcome.output_rows
        self.added += outcome.output_rows - kept
        self.dropped.update(reason_codes(outcome.rejected.column("reason")))
        self.notes.update(outcome.notes)

    def check(self, node: str, rows_written: int, rejects_written: int) -> None:
        """The ledger must balance and agree with what was actually written."""
        if self.rows_in != self.rows_out + self.dropped_total - self.added:
            raise LedgerError(f"node {node!r}: in {self.rows_in} != out {self.rows_out} + dropped "
                              f"{self.dropped_total} - added {self.added}")
        if (rows_written, rejects_written) != (self.rows_out, self.dropped_total):
            raise LedgerError(f"node {node!r}: wrote {rows_written} rows and {rejects_written} rejects, the ledger "
                              f"says {self.rows_out} and {self.dropped_total}")

    def to_dict(self) -> dict:
        return {"in": self.rows_in, "out": self.rows_out, "added": self.added,
                "dropped": dict(sorted(self.dropped.items())), "notes": dict(sorted(self.notes.items()))}

    @classmethod
    def from_dict(cls, d: dict) -> Ledger:
        return cls(d["in"], d["out"], d["added"], Counter(d["dropped"]), Counter(d.get("notes", {})))


def reason_codes(reasons: pa.Array | pa.ChunkedArray) -> Counter:
    if len(reasons) == 0:
        return Counter()
    codes = pc.list_element(pc.split_pattern(reasons, ":", max_splits=1), 0)
    return Counter({c["values"]: c["counts"] for c in pc.value_counts(codes).to_pylist()})
