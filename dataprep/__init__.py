"""dataprep: raw labelled text to a LoRA adapter as one cached, resumable DAG.

Every registered stage is importable (and listed by `dir(dataprep)`) and callable on a `pyarrow.Table`, a pandas
or polars DataFrame, a `datasets.Dataset` or `DatasetDict`, returning the same type (dataprep/frames.py);
`help(dataprep.normalize)` shows its docstring and parameters:

    from dataprep import normalize, exact_dedup, run
    clean = normalize(df, text_field="review")    # a DataFrame back
    outcome = exact_dedup.run(clean)              # Outcome: kept, rejected (id, reason, record), added
    reports = run("pipelines/zh_reviews.yaml")

Attributes are resolved lazily so that `import dataprep` (and `dataprep --help`) stays fast.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["load_pipeline", "run", "Runner", "Outcome", "stage", "param", "ConfigError", "SchemaError",
           "LedgerError"]


def run(pipeline, cache_root: str = "runs", until: str | None = None, force=()):
    """Run a pipeline (a path or a loaded Pipeline); return one report per node."""
    from dataprep.dag import load_pipeline
    from dataprep.runner import Runner
    if not hasattr(pipeline, "nodes"):
        pipeline = load_pipeline(pipeline)
    return Runner(pipeline, cache_root).run(until=until, force=force)


def __getattr__(name: str):
    if name == "load_pipeline":
        from dataprep.dag import load_pipeline
        return load_pipeline
    if name == "Runner":
        from dataprep.runner import Runner
        return Runner
    if name == "Outcome":
        from dataprep.outcome import Outcome
        return Outcome
    if name in ("stage", "param"):
        from dataprep import registry
        return getattr(registry, name)
    if name in ("ConfigError", "SchemaError", "LedgerError"):
        from dataprep import errors
        return getattr(errors, name)
    from dataprep.catalog import all_stages
    stages = all_stages()
    if name in stages:
        return stages[name]
    raise AttributeError(f"module 'dataprep' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names and every registered stage (importing the stages: only dir() and completion pay)."""
    from dataprep.catalog import all_stages
    return sorted((set(globals()) - {"annotations"}) | set(__all__) | set(all_stages()))
