"""A stand-in for ppl_score in pipeline tests: a deterministic `ppl` column, so a test can say which rows a
threshold drops. Imported by tests/test_ppl_filter.py; a pipeline names it in `imports:`."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from dataprep.registry import stage


@stage("t_ppl_len", version=1, kind="map", consumes=("cls",))
def t_ppl_len(table: pa.Table, p) -> pa.Table:
    """Add `ppl` = the length of the text in characters (float64), null where the text is "unscorable"."""
    ppl = pc.utf8_length(pc.fill_null(table.column("text"), "")).cast(pa.float64())
    unscorable = pc.fill_null(pc.equal(table.column("text"), "unscorable"), False)
    return table.append_column("ppl", pc.if_else(unscorable, pa.scalar(None, pa.float64()), ppl))
