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
