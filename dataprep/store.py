"""A cache root that is a `pyarrow.fs` URI (`s3://bucket/prefix`, `gs://…`, `hdfs://…`, `file:///…`): the
shared home of the node entries, with a local copy where this process works.

    runner = Runner(pipeline, "s3://bucket/dataprep")   # local copy: $DATAPREP_LOCAL_CACHE, default `runs`

Layout and keys are the local cache's (`<root>/<pipeline>/<node>/<key>/`, dataprep/cache.py), so an entry
computed on one machine — or by the Ray backend's driver — is a hit on every machine that names the same root.
An object store has neither locks nor renames, so the guarantees come from the manifest, as they do locally:

- **push**: a node commits in the local copy first (the atomic rename, the lock, as always), then every file of
  its entry is uploaded and the manifest last; an entry without a manifest is absent, so a push killed halfway
  leaves nothing that looks finished. Re-pushing a key deletes the remote manifest first.
- **pull**: a node found only in the remote store is reported cached and fetched when something reads it (an
  input of a node that runs, `show`, `save`, a model directory), not before: a rerun that changes the last node
  downloads only what that node reads. The download lands in a scratch directory and is committed only when
  every file has the manifest's size and xxh3-128; a damaged remote entry is named and never read.
- Two machines that compute one key at the same time upload the same bytes (a key gives the same bytes on any
  machine; the measured stats.json aside), so the last writer wins harmlessly.

Nothing is written outside the two roots: every remote path is `<root>/<plain name>/<plain name>/<key>/<file the
manifest names>`, checked as the local paths are.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from dataprep.errors import CacheError, ConfigError

LOCAL_COPY_ENV = "DATAPREP_LOCAL_CACHE"
DEFAULT_LOCAL_COPY = "runs"


def is_uri(root: object) -> bool:
    """Whether a cache root names a filesystem by URI (`scheme://…`) rather than a local path."""
    return isinstance(root, str) and "://" in root


@dataclass(frozen=True)
class RemoteStore:
    """Node entries under `base` of a pyarrow filesystem."""
    uri: str
    fs: object    # pyarrow.fs.FileSystem
    base: str     # the root's path inside `fs`, no trailing slash

    @classmethod
    def open(cls, uri: str) -> RemoteStore:
        """The store a URI names; a ConfigError in one line when pyarrow cannot open it (an unknown scheme, a
        filesystem this pyarrow was built without, a malformed URI)."""
        import pyarrow.fs as pafs
        try:
            fs, base = pafs.FileSystem.from_uri(uri)
        except (ValueError, OSError, NotImplementedError) as e:  # pyarrow's ArrowInvalid is a ValueError
            raise ConfigError(f"cache root {uri!r}: pyarrow.fs cannot open it ({_first_line(e)})") from None
        return cls(uri, fs, base.rstrip("/"))

    def entry(self, pipeline: str, node: str, key: str) -> str:
        """The remote directory of one entry; the names were checked by the NodeCache that asks."""
        return f"{self.base}/{pipeline}/{node}/{key}"

    def manifest(self, pipeline: str, node: str, key: str) -> dict | None:
        """The remote entry's manifest, or None when there is none (the entry is absent, or its push did not
        finish). A manifest that does not parse, or names another key, is a CacheError: it is damaged."""
        from dataprep.cache import MANIFEST
        path = f"{self.entry(pipeline, node, key)}/{MANIFEST}"
        if not self._is_file(path):
            return None
        try:
            with self.fs.open_input_stream(path) as f:
                doc = json.loads(f.read())
        except (OSError, ValueError) as e:
            raise CacheError(f"nodes.{node}: remote cache entry {path} unreadable ({_first_line(e)})") from None
        if not isinstance(doc, dict) or doc.get("key") != key:
            raise CacheError(f"nodes.{node}: remote cache entry {path} is not the manifest of key {key}")
        return doc

    def has(self, pipeline: str, node: str, key: str) -> bool:
        return self.manifest(pipeline, node, key) is not None

    def push(self, cache) -> None:
        """Upload a committed local entry (a NodeCache): its files, then its manifest."""
        import pyarrow.fs as pafs

        from dataprep.cache import MANIFEST
        remote = self.entry(cache.pipeline, cache.node, cache.key)
        local = pafs.LocalFileSystem()
        self._delete_if_present(f"{remote}/{MANIFEST}")  # from here on the remote entry is absent
        self.fs.create_dir(remote, recursive=True)
        for name in _entry_files(cache.dir):
            if name == MANIFEST:
                continue
            if "/" in name:
                self.fs.create_dir(f"{remote}/{name.rsplit('/', 1)[0]}", recursive=True)
            pafs.copy_files(str(cache.dir / name), f"{remote}/{name}", source_filesystem=local,
                            destination_filesystem=self.fs)
        pafs.copy_files(str(cache.dir / MANIFEST), f"{remote}/{MANIFEST}", source_filesystem=local,
                        destination_filesystem=self.fs)

    def pull(self, cache) -> None:
        """Download the remote entry into `cache` (a NodeCache of the local copy): into scratch, verified
        against the manifest byte for byte, then committed as a local entry is. A CacheError naming the file
        when the remote entry is damaged; the local copy is left as it was."""
        import pyarrow.fs as pafs

        from dataprep.cache import pipeline_lock
        if self.manifest(cache.pipeline, cache.node, cache.key) is None:
            raise CacheError(f"nodes.{cache.node}: no entry {cache.key} in the remote cache {self.uri}")
        with pipeline_lock(cache.root, cache.pipeline):
            scratch = cache.begin()
            try:
                pafs.copy_files(self.entry(cache.pipeline, cache.node, cache.key), str(scratch),
                                source_filesystem=self.fs, destination_filesystem=pafs.LocalFileSystem())
                cache.adopt(scratch, where=f"remote cache entry {self.entry(cache.pipeline, cache.node, cache.key)}")
            except BaseException:
                cache.discard(scratch)
                raise

    def _is_file(self, path: str) -> bool:
        import pyarrow.fs as pafs
        try:
            return self.fs.get_file_info(path).type == pafs.FileType.File
        except OSError as e:
            raise CacheError(f"remote cache {self.uri}: cannot reach {path} ({_first_line(e)})") from None

    def _delete_if_present(self, path: str) -> None:
        if self._is_file(path):
            self.fs.delete_file(path)


def _entry_files(directory) -> list[str]:
    """Every regular file under a local entry, as posix names relative to it (measured files included: a
    report on another machine shows the node times), sorted."""
    names = []
    for top, dirnames, filenames in os.walk(directory):
        dirnames.sort()
        for filename in sorted(filenames):
            path = os.path.join(top, filename)
            if not os.path.islink(path):
                names.append(os.path.relpath(path, directory).replace(os.sep, "/"))
    return names


def open_root(root) -> tuple[object, RemoteStore | None]:
    """(the local cache root, the remote store or None) for a cache root that is a path or a URI. For a URI
    the local copy is $DATAPREP_LOCAL_CACHE, or `runs` in the working directory."""
    if not is_uri(root):
        return root, None
    if str(root).startswith("file://") and not str(root).startswith("file:///"):
        raise ConfigError(f"cache root {root!r}: a file URI needs an absolute path (file:///…)")
    return os.environ.get(LOCAL_COPY_ENV, DEFAULT_LOCAL_COPY), RemoteStore.open(root)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
