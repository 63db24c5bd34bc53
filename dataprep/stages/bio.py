"""to_bio2: NER tags in any common scheme -> BIO2 (IOB2), with ill-formed sequences repaired or rejected.

Every scheme is decoded to entity spans by one routine; the prefixes mean:
  begin  B          inside  I, M          end  E, L          single  S, U          outside  O
Schemes differ only in whether an entity may open with an inside/end tag (IOB1, IO, IOE: yes) and whether it
must be closed by an end tag (IOBES, BILOU, BMES: yes). Ill-formed, repaired by the conlleval rules (an inside
tag that does not continue an entity of its type starts one): an I- after O or another type in IOB2; an entity
left open, or an E-/L- that closes nothing, in IOBES/BILOU/BMES.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from dataprep.outcome import Outcome
from dataprep.registry import param, stage

Scheme = Literal["IOB1", "IOB2", "BIO", "IOE", "IOBES", "BIOES", "BILOU", "BMES", "IO"]
ROLE = {"B": "begin", "I": "inside", "M": "inside", "E": "end", "L": "end", "S": "single", "U": "single"}
OPENS_WITH_ANY = {"IOB1", "IO", "IOE"}          # an I-/E- after O legitimately starts an entity
MUST_CLOSE = {"IOBES", "BIOES", "BILOU", "BMES"}  # an entity must end with E-/L- (or be S-/U-)


@dataclass(frozen=True)
class Span:
    start: int
    end: int  # exclusive
    type: str


class IllFormed(ValueError):
    pass


class BadTag(IllFormed):
    """A tag no scheme can read (`X`, `B-` with no type): the row is rejected even with ill_formed=repair."""

    def __init__(self, tag: str | None):
        super().__init__(f"unparseable tag {tag!r}")
        self.tag = tag


def parse_tag(tag: str, strip_suffix: bool) -> tuple[str, str | None]:
    """'B-PER.NAM' -> ('B', 'PER.NAM') or ('B', 'PER'); also 'B_PER' and 'PER-B'. 'O' -> ('O', None)."""
    if not isinstance(tag, str):  # a null in the tag list (JSON null): one bad row, not a crashed node
        raise BadTag(tag)
    if tag in ("O", "o", "", "-"):
        return "O", None
    for sep in ("-", "_"):
        prefix, s, etype = tag.partition(sep)
        if s and etype and prefix.upper() in ROLE:
            break
        etype, s, prefix = tag.rpartition(sep)  # suffix style: PER-B
        if s and etype and prefix.upper() in ROLE:
            break
    else:
        raise BadTag(tag)
    if strip_suffix:
        etype = etype.split(".")[0]
    return prefix.upper(), etype


def spans(tags: list[str], scheme: str, repair: bool = True, strip_suffix: bool = False) -> list[Span]:
    """Decode a tag sequence to entity spans. With repair=False an ill-formed sequence raises IllFormed."""
    out: list[Span] = []
    start, etype = None, None  # the open entity

    def close(at: int, properly: bool) -> None:
        nonlocal start, etype
        if start is not None:
            if not properly and scheme in MUST_CLOSE:
                complain(f"entity {etype} at {start} is not closed by an end tag")
            out.append(Span(start, at, etype))
        start, etype = None, None

    def complain(msg: str) -> None:
        if not repair:
            raise IllFormed(msg)

    for i, tag in enumerate(tags):
        prefix, t = parse_tag(tag, strip_suffix)
        role = "outside" if prefix == "O" else ROLE[prefix]
        continues = start is not None and t == etype and role in ("inside", "end")
        if role == "outside":
            close(i, properly=False)
        elif role in ("begin", "single"):
            close(i, properly=False)
            start, etype = i, t
        elif not continues:
            close(i, properly=False)
            if scheme not in OPENS_WITH_ANY:
                complain(f"{tag} at {i} does not continue an entity of type {t}")
            start, etype = i, t
        if role in ("single", "end") and start is not None:
            if role == "end" and scheme in ("IOB1", "IOB2", "BIO", "IO"):
                complain(f"{tag} at {i}: {scheme} has no end tags")
            close(i + 1, properly=True)
    close(len(tags), properly=False)
    return out


def bio2(span_list: list[Span], n: int) -> list[str]:
    tags = ["O"] * n
    for s in span_list:
        tags[s.start] = f"B-{s.type}"
        for i in range(s.start + 1, s.end):
            tags[i] = f"I-{s.type}"
    return tags


@dataclass(frozen=True)
class Bio2Params:
    scheme: Scheme = param("IOB2", "the tagging scheme of the input (BIO = IOB2, BIOES = IOBES)")
    ill_formed: Literal["repair", "reject"] = param("repair", "repair by conlleval rules, or reject the row")
    strip_suffix: bool = param(False, "drop entity-type suffixes: B-PER.NAM -> B-PER")
    types: list[str] | None = param(None, "the entity types allowed; a row with another type is rejected")


@stage("to_bio2", version=2, kind="map", params=Bio2Params, consumes=("bio",))
def to_bio2(table: pa.Table, p: Bio2Params) -> Outcome:
    """Convert NER tags from `scheme` to BIO2, repairing or rejecting ill-formed sequences.

    Drop reasons: `tag_count_mismatch` (tokens and tags differ in length), `ill_formed_bio:<what>` (with
    ill_formed=reject), `bad_tag:<tag>`, `unknown_type:<type>` (not in `types`), `empty_tokens`.
    """
    allowed = set(p.types) if p.types else None
    new_tags, reasons, changed = [], [], 0
    for tokens, tags in zip(table.column("tokens").to_pylist(), table.column("tags").to_pylist()):
        tags_out, reason = _convert(tokens or [], tags or [], p, allowed)
        new_tags.append(tags_out)
        reasons.append(reason)
        changed += reason is None and tags_out != tags
    converted = table.set_column(table.column_names.index("tags"), "tags", pa.array(new_tags, pa.list_(pa.string())))
    outcome = Outcome.split(converted, reasons, original=table)
    # A repair or a scheme conversion rewrites tags without dropping the row: count it, never do it silently.
    outcome.notes = {"tags_rewritten": changed}
    return outcome


def _convert(tokens: list, tags: list, p: Bio2Params, allowed: set | None) -> tuple[list, str | None]:
    if not tokens:
        return tags, "empty_tokens"
    if len(tokens) != len(tags):
        return tags, "tag_count_mismatch"
    try:
        found = spans(tags, p.scheme, repair=p.ill_formed == "repair", strip_suffix=p.strip_suffix)
    except BadTag as e:  # by type, not by message: a tag like I-unparseable is still only ill-formed
        return tags, f"bad_tag:{e.tag}"
    except IllFormed as e:
        return tags, f"ill_formed_bio:{e}"
    unknown = sorted({s.type for s in found} - allowed) if allowed else []
    if unknown:
        return tags, f"unknown_type:{unknown[0]}"
    return bio2(found, len(tokens)), None
