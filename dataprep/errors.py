"""The few exceptions dataprep raises on purpose, each naming where the problem is."""


class DataprepError(Exception):
    """Base class: every error dataprep raises deliberately."""


class ConfigError(DataprepError):
    """A pipeline or stage configuration is wrong. Raised before any data moves.

    `node` and `key` locate the problem in the YAML, so the message can point at it.
    """

    def __init__(self, message: str, node: str | None = None, key: str | None = None):
        self.node, self.key = node, key
        where = ".".join(p for p in (f"nodes.{node}" if node else None, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class SchemaError(DataprepError):
    """A table does not match the record contract of its kind (cls, bio, parallel)."""


class LedgerError(DataprepError):
    """A node's counts do not balance (rows in != rows out + dropped - added); it is not committed."""


class InputError(DataprepError):
    """An input file (or dataset directory) cannot be read at all: not a Parquet file, not a saved dataset, a
    CSV header that cannot be mapped. One line naming the file; raised before the reader yields any rows.
    A bad *record* is never an InputError: it becomes a reject."""


class CacheError(DataprepError):
    """The cache refuses an operation: a path that would leave its root, a root that is not a directory, a
    pipeline another run holds, a corrupt entry asked for by name."""


def brief(value, limit: int = 80) -> str:
    """`repr(value)` cut to about `limit` characters, in time bounded by `limit` however large or deeply nested
    (or self-referencing) the value is: error messages quote user values, and a YAML file can make a value of
    billions of items out of a few aliases."""
    import reprlib
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxtuple, short.maxset, short.maxdict = 3, 6, 6, 6, 4
    short.maxstring, short.maxlong, short.maxother = limit, 40, limit
    try:
        text = short.repr(value)
    except Exception:  # e.g. an int beyond Python's digit limit cannot be printed at all
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def one_line(text: str, limit: int = 200) -> str:
    """A message (which may quote a huge or multi-line value) as one line of at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
