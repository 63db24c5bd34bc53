"""The stages dataprep ships, by name: the one module that knows every built-in stage package.

registry.py defines what a stage is and how one registers (a leaf: it imports no stage); this module imports
the packages that register the built-in ones, on first lookup, so `dataprep --help` imports none of them.
"""
from __future__ import annotations

from dataprep.registry import Stage, registered


def get(name: str) -> Stage:
    """The stage registered under `name` (KeyError when there is none)."""
    _load_builtin_stages()
    return registered()[name]


def all_stages() -> dict[str, Stage]:
    """Every registered stage (built-in and imported by pipelines), by name."""
    _load_builtin_stages()
    return dict(sorted(registered().items()))


def _load_builtin_stages() -> None:
    import dataprep.io  # noqa: F401  (registers the readers)
    import dataprep.models  # noqa: F401  (registers the model builders; heavy imports stay inside them)
    import dataprep.predict  # noqa: F401  (registers predict and evaluate: the adapter in use)
    import dataprep.stages  # noqa: F401  (registers the stages)
    import dataprep.train  # noqa: F401  (registers train_lora)
