"""Physical lines of a text file with 1-based line numbers: BOM and line ends stripped, bytes kept raw.

Decoding is left to the caller, so one line of invalid UTF-8 becomes one reject instead of a crash. A line ends
at `\\n` only: a bare `\\r` (or U+2028, NEL, ...) inside a line is a character of that line, so line numbers are
the ones `wc -l`, editors and `sed -n` agree on.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dataprep.errors import InputError

BOM = b"\xef\xbb\xbf"


def open_input(path: str | Path) -> BinaryIO:
    """The file opened for reading bytes; a file that cannot be opened (a directory, no permission) is an
    InputError naming it, not an OSError traceback."""
    try:
        return open(path, "rb")
    except OSError as e:
        raise InputError(f"{path}: cannot open: {e.strerror or e}") from None


def iter_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    with open_input(path) as f:
        for lineno, line in enumerate(f, start=1):
            if lineno == 1 and line.startswith(BOM):
                line = line[len(BOM):]
            yield lineno, line.rstrip(b"\r\n")


def decode(line: bytes) -> str | None:
    """UTF-8 text of a line, or None when it is not valid UTF-8."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def raw_text(line: bytes) -> str:
    """A printable form of a raw line for the rejects file (invalid bytes escaped, never dropped)."""
    return line.decode("utf-8", errors="backslashreplace")
