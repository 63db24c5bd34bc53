"""Where a pipeline's nodes execute: `local` (dataprep/runner.py, the default) or `ray` (backends/ray.py).

Both use dataprep/execute.py for what a stage of each kind is asked to do and dataprep/cache.py for where its
rows go, so a node has one key and one set of bytes whichever backend computed it.
"""
from __future__ import annotations

BACKENDS = ("local", "ray")


def runner_for(pipeline, cache_root, backend: str = "local", address: str | None = None, **kwargs):
    """A runner of `pipeline` on `backend` (`ray`: on the cluster at `address`, or a local one it starts)."""
    if backend == "local":
        from dataprep.runner import Runner
        return Runner(pipeline, cache_root, **kwargs)
    if backend == "ray":
        from dataprep.backends.ray import RayRunner
        return RayRunner(pipeline, cache_root, address=address, **kwargs)
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
