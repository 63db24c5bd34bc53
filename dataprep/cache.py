"""Node keys and the on-disk cache: `<root>/<pipeline>/<node>/<key>/` holding parts, rejects, stats and, last,
the manifest.

Parts are Parquet by default (compact, readable by anything) or Arrow IPC files: uncompressed and memory-mapped,
~5x cheaper to write and nearly free to read, for caches that live only as long as one job (`dataprep stage`).
A reader tells the two apart by the file's suffix, so the format is an execution choice, not part of a key.

key(node) = hash(stage name, stage version, params that decide the output, keys of its inputs); a source's key
also hashes the bytes of its files. A node is cached only if its manifest exists and vouches for its files:
outputs are written in a `<key>.partial-<pid>` directory, fsynced, described in the manifest (size and xxh3-128
of every file), and renamed into place, so a killed run or a power loss leaves nothing that looks finished, and
a file damaged later is detected (`NodeCache.verify`) and recomputed instead of read.

This module owns the directory: no path it builds leaves the resolved cache root (names are checked, symlinks
out are refused), `clean` removes only what it can prove this project wrote, and one process at a time writes a
pipeline's entries (`pipeline_lock`).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from dataprep.errors import CacheError, brief
from dataprep.modelref import model_refs
from dataprep.outcome import Outcome
from dataprep.overlap import Behind
from dataprep.registry import key_params
from dataprep.schema import REJECTS, conform

MANIFEST = "manifest.json"
STATS = "stats.json"
# Files that hold what was measured while the node ran (wall-clock seconds, latency, memory): they differ
# between two runs of one key by nature, so the manifest does not vouch for their bytes.
MEASURED = {STATS, "efficiency.json", "efficiency.md"}
MEASURED_DIRS = {"monitor"}  # a trainer's TensorBoard / W&B files: event times and tokens/s
LOCK = ".lock"  # <root>/<pipeline>/.lock: a dot name, so no node (names start with a letter or digit) can clash
FORMAT = 2      # manifest format: 2 added `format` and `files` (size and xxh3-128 of every file)
NAME_RULE = "1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit, no '..'"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KEY = re.compile(r"[0-9a-f]{16}")
_LEFTOVER = re.compile(r"(?P<key>[0-9a-f]{16})\.(?:partial-[0-9]+(?:\.old)?|work)")


def node_key(node, input_keys: list[str], model_keys: dict[str, str] | None = None) -> str:
    """`model_keys`: the key of each node a model param names (`{node: NAME}`); how each model reference is
    keyed is ModelRef.key_doc's (a local directory by its files' bytes, like a source; a hub id by its name)."""
    params = key_params(node.params)
    by_node = {}
    for key, ref in model_refs(node.params).items():
        if ref.kind == "node":
            by_node[ref.value] = (model_keys or {})[key]
        if key in params:
            params[key] = ref.key_doc(by_node)
    doc = {"stage": node.stage.name, "version": node.stage.version, "params": params, "inputs": input_keys}
    if node.stage.kind == "source" and getattr(node.params, "path", ""):
        doc["files"] = source_digests(node.params)
    blob = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def source_digests(params) -> list[tuple[str, str]]:
    """(name, xxh3-128) of every file a reader reads: its shards (a file, a directory's matching files, a
    glob's matches — adding, removing or changing one changes the key), or every file under its path."""
    shards = getattr(params, "source_files", None)
    if shards is None:
        return file_digests(params.path)
    return [(shard.name, _xxh3(Path(shard.path))) for shard in shards()]


def file_digests(path: str) -> list[tuple[str, str]]:
    """(relative name, xxh3-128 of the bytes) of every file of a source: hashing runs at GB/s."""
    root = Path(path)
    files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
    return [(str(f.relative_to(root)) if root.is_dir() else f.name, _xxh3(f)) for f in files]


def safe_name(name: object) -> bool:
    """Whether `name` may name a pipeline or node directory: a plain name, never a path, `..` or a dot file."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None and ".." not in name


def inside_root(root: str | Path, *names: str) -> Path:
    """`root/names...`, refused unless every name is a plain name and the path, symlinks resolved, stays under
    the resolved root: a root that is itself a symlink is followed, a symlink inside it that leads out is not.
    The path comes back as given (a relative root stays relative), so messages show what the user typed."""
    root = Path(root)
    for name in names:
        if not safe_name(name):
            raise CacheError(f"refusing cache path component {brief(name)}: not a plain name ({NAME_RULE})")
    path = root.joinpath(*names)
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        inside = False
    if not inside:
        raise CacheError(f"cache path {path} resolves outside the cache root {root}; refusing to use it "
                         "(a symlink?)")
    return path


# --- one writer per pipeline ---

@dataclass
class _Held:
    """This process's hold on one lock file: its threads take turns on `turn`; `depth` counts nested holds."""
    turn: threading.RLock
    depth: int = 0
    fd: int = -1


_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def say(message: str) -> None:
    """One line on stderr, for the person who started the run (a wait, a recomputed entry)."""
    print(message, file=sys.stderr, flush=True)


@contextmanager
def pipeline_lock(root: str | Path, pipeline: str, wait: bool = True,
                  on_wait: Callable[[str], None] = say) -> Iterator[None]:
    """Hold the exclusive lock of one pipeline's cache directory: `fcntl.flock` on `<root>/<pipeline>/.lock`.

    While another process holds it, wait (telling `on_wait`, once, "waiting for another run of P (pid N)") or,
    with `wait=False`, raise a CacheError naming that process. The kernel drops a flock when its holder exits,
    however it dies, so the lock is never stale, and its holder knows that no live process writes this pipeline's
    entries: scratch directories beside them are leftovers of killed runs. Re-entrant within a process."""
    directory = _pipeline_dir(root, pipeline)
    held = _held(directory / LOCK)
    if not held.turn.acquire(blocking=wait):  # another thread of this process holds it
        raise CacheError(_busy(pipeline, str(os.getpid()), directory))
    try:
        if held.depth == 0:
            held.fd = _flock(directory, pipeline, wait, on_wait)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0:
                os.close(held.fd)  # closing the file releases the flock
    finally:
        held.turn.release()


def holds_lock(root: str | Path, pipeline: str) -> bool:
    """Whether this process holds `pipeline_lock(root, pipeline)`."""
    held = _HELD.get(str((Path(root) / pipeline / LOCK).resolve()))
    return held is not None and held.depth > 0


def _pipeline_dir(root: str | Path, pipeline: str) -> Path:
    if Path(root).exists() and not Path(root).is_dir():
        raise CacheError(f"cache root {root} is not a directory")
    directory = inside_root(root, pipeline)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CacheError(f"cannot create the cache directory {directory}: {e.strerror}") from None
    return directory


def _held(lock_file: Path) -> _Held:
    with _HELD_GUARD:
        return _HELD.setdefault(str(lock_file.resolve()), _Held(threading.RLock()))


def _flock(directory: Path, pipeline: str, wait: bool, on_wait: Callable[[str], None]) -> int:
    """Open and flock the lock file, then write our pid in it for whoever waits next."""
    path = directory / LOCK
    try:  # O_NOFOLLOW: a lock file that is a symlink is not ours to write through
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise CacheError(f"cannot open the lock file {path}: {e.strerror}") from None
    try:
        if not _try_flock(fd):
            holder = _holder(fd)
            if not wait:
                raise CacheError(_busy(pipeline, holder, directory))
            on_wait(f"waiting for another run of {pipeline} (pid {holder})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.pwrite(fd, f"{os.getpid():>20}\n".encode(), 0)  # fixed width: never read half-written or empty
    except BaseException:
        os.close(fd)
        raise
    return fd


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _holder(fd: int) -> str:
    """The pid the current holder wrote into the lock file, or '?' before it has."""
    text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "?"


def _busy(pipeline: str, holder: str, directory: Path) -> str:
    return f"another run of {pipeline} (pid {holder}) is using {directory}; try again when it ends"


# --- entries ---

class _Corrupt(Exception):
    """Why an entry cannot be trusted, in a few words naming the file: "part-00000.parquet: size 1, expected 2"."""


class NodeCache:
    """The cache entry of one node at one key. Every path it builds stays under the resolved root."""

    def __init__(self, root: str | Path, pipeline: str, node: str, key: str):
        if not (isinstance(key, str) and _KEY.fullmatch(key)):
            raise CacheError(f"refusing cache key {brief(key)}: not 16 hex digits")
        self.root, self.pipeline, self.node = Path(root), pipeline, node
        self.base = inside_root(root, pipeline, node)
        self.key = key
        self.dir = self.base / key

    @property
    def work_dir(self) -> Path:
        """Where a build node keeps checkpoints: beside the entry, outside the scratch directory a rerun wipes,
        so an interrupted build (a long training run) continues; same key, same config, safe to resume."""
        return self.base / f"{self.key}.work"

    @property
    def present(self) -> bool:
        """Whether anything stands where the entry would be, intact or not."""
        return os.path.lexists(self.dir)

    @property
    def committed(self) -> bool:
        """Present and intact as far as one stat per file tells (sizes, not checksums): cheap for any caller."""
        return self.present and self.verify(checksums=False) is None

    def state(self, checksums: bool = True) -> tuple[str, str | None]:
        """("missing", None), ("cached", None) or ("corrupt", why): `verify` for an entry that may be absent."""
        if not self.present:
            return "missing", None
        problem = self.verify(checksums)
        return ("corrupt", problem) if problem else ("cached", None)

    def verify(self, checksums: bool = True) -> str | None:
        """None when the entry can be trusted; otherwise why not, naming the file ("rejects.parquet: missing",
        "part-00000.parquet: size 123, expected 456", "manifest.json: empty"). Without `checksums` only the
        manifest and each file's size are checked; with them every byte is hashed (xxh3, GB/s)."""
        try:
            manifest = self._read_manifest()
            for name, meta in sorted(manifest["files"].items()):
                _check_file(self.dir, name, meta, checksums)
        except _Corrupt as e:
            return str(e)
        return None

    def corrupt_error(self, problem: str, advice: str) -> CacheError:
        """The one-line error for a damaged entry: "nodes.X: cache entry corrupt (PROBLEM); ADVICE"."""
        return CacheError(f"nodes.{self.node}: cache entry corrupt ({problem}); {advice}")

    def manifest(self) -> dict:
        try:
            return self._read_manifest()
        except _Corrupt as e:
            raise self.corrupt_error(str(e), "run the pipeline to recompute it") from None

    def _read_manifest(self, directory: Path | None = None) -> dict:
        directory = self.dir if directory is None else directory
        if directory.is_symlink() or not directory.is_dir():
            raise _Corrupt(f"{self.key}: not a directory")
        try:
            raw = (directory / MANIFEST).read_bytes()
        except FileNotFoundError:
            raise _Corrupt(f"{MANIFEST}: missing") from None
        except OSError as e:
            raise _Corrupt(f"{MANIFEST}: unreadable ({e.strerror})") from None
        if not raw.strip():
            # A disk fault or a hand edit: a commit writes the manifest whole and fsyncs it before the rename.
            raise _Corrupt(f"{MANIFEST}: empty")
        try:
            manifest = json.loads(raw)
        except ValueError:  # UnicodeDecodeError included
            raise _Corrupt(f"{MANIFEST}: not valid JSON") from None
        if not isinstance(manifest, dict) or manifest.get("key") != self.key:
            raise _Corrupt(f"{MANIFEST}: not the manifest of this entry")
        if "format" not in manifest:
            raise _Corrupt(f"{MANIFEST}: written by an older dataprep, without checksums")
        if manifest["format"] != FORMAT or not _well_formed(manifest):
            raise _Corrupt(f"{MANIFEST}: not a manifest this dataprep reads (format {brief(manifest['format'])})")
        return manifest

    def parts(self) -> list[Path]:
        return [self.dir / p for p in self.manifest()["parts"]]

    def iter_batches(self, batch_rows: int) -> Iterator[pa.Table]:
        for part in self.parts():
            yield from iter_part(part, batch_rows)

    def read(self) -> pa.Table:
        parts = [read_part(p) for p in self.parts()]
        # parts may differ in schema: a new part starts when lineage columns appear (added rows) or a column
        # that was all-null gets a type, so they are unified rather than required to match.
        return pa.concat_tables(parts, promote_options="permissive") if parts else pa.table({})

    def rejects(self) -> pa.Table:
        for suffix in PART_FORMATS.values():
            if (path := self.dir / f"rejects{suffix}").is_file():
                return read_part(path)
        raise FileNotFoundError(f"no rejects file in {self.dir}")

    def begin(self) -> Path:
        """A fresh scratch directory for this node's outputs. Call it holding the pipeline's lock (Runner.run
        does): then no live process writes beside this key, so the scratch directories of killed runs go."""
        if not holds_lock(self.root, self.pipeline):
            raise CacheError(f"NodeCache.begin without the lock of pipeline {self.pipeline}: "
                             "take pipeline_lock first")
        if not self.base.is_dir():
            self.base.mkdir(parents=True)
            _fsync_dir(self.base.parent)  # the new node directory's own name must be durable too
        for stale in self.base.glob(f"{self.key}.partial-*"):
            if _LEFTOVER.fullmatch(stale.name):
                _remove(stale)
        scratch = self.base / f"{self.key}.partial-{os.getpid()}"
        scratch.mkdir()
        return scratch

    def commit(self, scratch: Path, manifest: dict, stats: dict | None = None) -> None:
        """Write `stats` (measured: time, rows/s) beside the outputs, describe every file (size, xxh3-128) and
        make it durable, write the manifest last, then move the directory into place: after a crash at any
        point the entry is absent or complete, never half there."""
        if stats is not None:
            (scratch / STATS).write_text(json.dumps(stats, indent=2))
        doc = {**manifest, "key": self.key, "format": FORMAT, "files": _describe(scratch)}
        tmp = scratch / (MANIFEST + ".tmp")
        _write_durably(tmp, json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode())
        os.replace(tmp, scratch / MANIFEST)
        self._install(scratch)

    def adopt(self, scratch: Path, where: str) -> None:
        """Commit a scratch directory that already holds a whole entry, manifest included (downloaded from a
        remote cache, dataprep/store.py), once every file it names has its recorded size and xxh3-128; a
        CacheError naming `where` and the file otherwise."""
        try:
            manifest = self._read_manifest(scratch)
            for name, meta in sorted(manifest["files"].items()):
                _check_file(scratch, name, meta, checksums=True)
        except _Corrupt as e:
            raise CacheError(f"nodes.{self.node}: {where} corrupt ({e}); not used") from None
        for path in scratch.rglob("*"):  # the downloaded bytes durable before the rename makes them the entry
            if path.is_file() and not path.is_symlink():
                _fsync_file(path)
        self._install(scratch)

    def discard(self, scratch: Path) -> None:
        """Remove a scratch directory this entry's `begin` made (a failed download)."""
        if scratch.parent == self.base and scratch.name.startswith(f"{self.key}.partial-"):
            _remove(scratch)

    def _install(self, scratch: Path) -> None:
        """Move a complete scratch directory into place: durable first, the old entry (a rerun) set aside and
        removed only after, so a crash at any point leaves the entry absent or whole."""
        _fsync_dirs(scratch)
        old = self.base / f"{self.key}.partial-{os.getpid()}.old"
        if os.path.lexists(self.dir):  # a forced or recomputing rerun: set the old entry aside, never half-delete
            _remove(old)
            os.rename(self.dir, old)
        os.rename(scratch, self.dir)
        _fsync_dir(self.base)
        _remove(old)

    def remove(self) -> None:
        _remove(self.dir)


def _well_formed(manifest: dict) -> bool:
    """The fields a reader of the entry relies on, of the types it relies on."""
    files, parts, ledger = manifest.get("files"), manifest.get("parts"), manifest.get("ledger")
    return (isinstance(files, dict) and all(_plain_relative(n) and _file_meta(m) for n, m in files.items())
            and isinstance(parts, list) and all(isinstance(p, str) and p in files for p in parts)
            and isinstance(ledger, dict) and all(k in ledger for k in ("in", "out", "added", "dropped"))
            and isinstance(ledger["dropped"], dict))


def _plain_relative(name: object) -> bool:
    """A file name the manifest may vouch for: relative, inside the entry, no `..`."""
    return (isinstance(name, str) and bool(name) and not name.startswith("/")
            and all(part not in ("", ".", "..") for part in name.split("/")))


def _file_meta(meta: object) -> bool:
    return (isinstance(meta, dict) and isinstance(meta.get("size"), int) and meta["size"] >= 0
            and isinstance(meta.get("xxh3"), str))


def _check_file(entry: Path, name: str, meta: dict, checksums: bool) -> None:
    """Raise _Corrupt unless `entry/name` is a regular file inside the entry with the recorded size (and bytes)."""
    path = entry / name
    if "/" in name and not path.resolve().is_relative_to(entry.resolve()):
        raise _Corrupt(f"{name}: outside the entry")
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            raise _Corrupt(f"{name}: not a regular file")
        if info.st_size != meta["size"]:
            raise _Corrupt(f"{name}: size {info.st_size}, expected {meta['size']}")
        if checksums and _xxh3(path) != meta["xxh3"]:
            raise _Corrupt(f"{name}: checksum mismatch")
    except FileNotFoundError:
        raise _Corrupt(f"{name}: missing") from None
    except OSError as e:
        raise _Corrupt(f"{name}: unreadable ({e.strerror})") from None


def _xxh3(path: Path, fsync: bool = False) -> str:
    """xxh3-128 of a file's bytes (GB/s); `fsync` also makes the file durable while it is open."""
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
        if fsync:
            os.fsync(f.fileno())
    return h.hexdigest()


def _describe(scratch: Path) -> dict[str, dict]:
    """{relative name: {size, xxh3}} of every regular file the entry vouches for, each fsynced on the way.
    MEASURED files (stats.json, a trainer's efficiency.*, what is under its monitor/) are left out: they
    hold wall-clock timings, so recording their bytes would make two runs of one key write different
    manifests (tests/test_resume.py compares them). Symlinks are left out too: a link cannot be vouched for
    by its bytes, and no stage writes one."""
    files = {}
    for directory, dirnames, filenames in os.walk(scratch):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(directory) / filename
            name = path.relative_to(scratch).as_posix()
            measured = path.name in MEASURED or MEASURED_DIRS & set(Path(name).parts[:-1])
            if name in (MANIFEST, MANIFEST + ".tmp") or measured or path.is_symlink():
                continue
            files[name] = {"size": path.stat().st_size, "xxh3": _xxh3(path, fsync=True)}
    return files


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a directory's entries (names created or renamed in it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dirs(top: Path) -> None:
    for directory, _, _ in os.walk(top):
        _fsync_dir(Path(directory))


def _remove(path: Path) -> None:
    """Delete what stands at `path`: a symlink is unlinked, never followed; a directory goes with its contents
    (shutil.rmtree does not follow the symlinks inside it on this platform)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


# --- clean ---

@dataclass
class Cleaned:
    """What `clean` did: entries and leftovers removed, and what it left alone because it could not prove it
    wrote them."""
    entries: int = 0
    leftovers: int = 0
    foreign: int = 0


def clean(root: str | Path, pipeline: str, keep: Mapping[str, str]) -> Cleaned | None:
    """Remove the entries of `pipeline` under `root` whose key `keep` ({node: key}) does not name (all of them
    for `{}`), their checkpoints, and every scratch directory; None when there is no cache to clean.

    Only what this project provably wrote goes: a directory named by a 16-hex key whose manifest names that key,
    or a `<key>.partial-<pid>` / `<key>.work` directory in a node directory; nothing is followed through a
    symlink. The pipeline's lock is taken without waiting, so a running pipeline makes clean fail instead of
    deleting what the run is writing (and, holding the lock, every scratch directory is a dead run's)."""
    directory = inside_root(root, pipeline)
    if directory.is_symlink():
        raise CacheError(f"cache path {directory} is a symlink; refusing to clean through it")
    if not directory.is_dir():
        return None
    done = Cleaned()
    with pipeline_lock(root, pipeline, wait=False):
        for node_dir in sorted(directory.iterdir()):
            if node_dir.name == LOCK:
                continue
            if node_dir.is_symlink() or not node_dir.is_dir() or not safe_name(node_dir.name):
                done.foreign += 1
                continue
            _clean_node(node_dir, keep.get(node_dir.name), done)
            with suppress(OSError):
                node_dir.rmdir()  # only succeeds when nothing is left in it
    return done


def _clean_node(node_dir: Path, current: str | None, done: Cleaned) -> None:
    for entry in sorted(node_dir.iterdir()):
        own = _own(entry)
        if own is None:
            done.foreign += 1
            continue
        kind, key = own
        if kind == "partial" or key != current:
            _remove(entry)
            done.entries += kind == "entry"
            done.leftovers += kind != "entry"


def _own(entry: Path) -> tuple[str, str] | None:
    """("entry" | "partial" | "work", key) when this project provably wrote `entry`, else None."""
    if entry.is_symlink() or not entry.is_dir():
        return None
    if _KEY.fullmatch(entry.name):
        return ("entry", entry.name) if _own_manifest(entry) else None
    if match := _LEFTOVER.fullmatch(entry.name):
        return ("work" if entry.name.endswith(".work") else "partial"), match["key"]
    return None


def _own_manifest(entry: Path) -> bool:
    """Whether `entry/manifest.json` is a manifest this project wrote (any format): it names its own key."""
    path = entry / MANIFEST
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 24:
            return False
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and manifest.get("key") == entry.name
            and "stage" in manifest and "ledger" in manifest)


PART_FORMATS = {"parquet": ".parquet", "arrow": ".arrow"}


def part_writer(path: Path, schema: pa.Schema):
    """A writer with `write_table` and `close` for a part file; the suffix of `path` picks the format."""
    if path.suffix == ".arrow":
        return pa.ipc.new_file(path, schema)
    return pq.ParquetWriter(path, schema)


def read_part(path: Path) -> pa.Table:
    if path.suffix == ".arrow":
        return pa.ipc.open_file(pa.memory_map(str(path))).read_all()  # zero-copy: pages load as they are read
    return pq.read_table(path)


def iter_part(path: Path, batch_rows: int) -> Iterator[pa.Table]:
    if path.suffix == ".arrow":
        table = read_part(path)
        for offset in range(0, table.num_rows, batch_rows):
            yield table.slice(offset, batch_rows)
        return
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        yield pa.Table.from_batches([batch])


class PartWriter:
    """Writes a node's output rows to `part-NNNNN.<format>` files and its rejects to `rejects.<format>`, on a
    background thread so that encoding and compression overlap the stage's work on the next batch.

    A node's parts share one schema, so any Parquet reader (pyarrow.dataset, pandas, polars, datasets) reads the
    directory as one table: a batch whose columns differ (rows a scoped stage routed around lack the columns it
    adds) starts a new part, and on close the parts that lack a column get it as nulls, in the one column order."""

    def __init__(self, directory: Path, kind: str, rows_per_part: int, part_format: str = "parquet"):
        self.dir, self.kind, self.rows_per_part = directory, kind, rows_per_part
        self.suffix = PART_FORMATS[part_format]
        self.parts: list[str] = []
        self.rows = self.rejects = 0
        self._part, self._schema = None, None
        self._schemas: list[pa.Schema] = []  # each part's
        self._part_rows = 0
        self._rejects = part_writer(directory / f"rejects{self.suffix}", REJECTS)
        self._behind = Behind()

    def write(self, outcome: Outcome) -> None:
        self._behind.submit(self._write, outcome)

    def _write(self, outcome: Outcome) -> None:
        table = outcome.output()
        if table.num_rows:
            self._write_rows(conform(table, self.kind))
        if outcome.rejected.num_rows:
            self._rejects.write_table(outcome.rejected)
            self.rejects += outcome.rejected.num_rows

    def _write_rows(self, table: pa.Table) -> None:
        if self._part is not None and (self._part_rows >= self.rows_per_part
                                       or not self._schema.equals(table.schema)):
            self._close_part()
        if self._part is None:
            self.parts.append(f"part-{len(self.parts):05d}{self.suffix}")
            self._part, self._schema = part_writer(self.dir / self.parts[-1], table.schema), table.schema
            self._schemas.append(table.schema)
        self._part.write_table(table)
        self._part_rows += table.num_rows
        self.rows += table.num_rows

    def _close_part(self) -> None:
        self._part.close()
        self._part, self._part_rows = None, 0

    def close(self) -> None:
        """Finish every pending write and close the files; the counts are final after this. A write that
        failed on the writer thread raises here (or in a later `write`), not where its batch was handed over."""
        try:
            self._behind.drain()
        finally:
            self._close_files()
        self._unify_parts()

    def _unify_parts(self) -> None:
        """Rewrite the parts whose schema is not the node's: the union of every part's columns, in first-seen
        order, a missing column as nulls (a column that is all nulls in one part takes the others' type)."""
        if all(schema.equals(self._schemas[0]) for schema in self._schemas):
            return
        unified = pa.unify_schemas(self._schemas, promote_options="permissive")
        for name, schema in zip(self.parts, self._schemas):
            if schema.equals(unified):
                continue
            path = self.dir / name
            table = read_part(path)
            columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
                       else pa.nulls(table.num_rows, f.type) for f in unified]
            table = pa.Table.from_arrays(columns, schema=unified)
            fresh = path.with_name(path.name + ".unified" + path.suffix)  # an Arrow part is memory-mapped: not in place
            writer = part_writer(fresh, unified)
            writer.write_table(table)
            writer.close()
            os.replace(fresh, path)

    def abort(self) -> None:
        """The stage failed: stop writing and close the files (the scratch directory is discarded). The
        stage's own error is the one worth reporting, so failures here are swallowed."""
        with suppress(Exception):
            self._behind.drain()
        with suppress(Exception):
            self._close_files()

    def _close_files(self) -> None:
        try:
            if self._part is not None:
                self._close_part()
        finally:
            self._rejects.close()
