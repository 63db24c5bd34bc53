"""A model parameter's value, one type: a node of the DAG (`{node: NAME}`), a local directory, or a hub id.

Parsed once (dag.py, before data moves: `Node.models` maps each `{node: NAME}` param to NAME) and keyed once
(`key_doc`: a node by its key, a directory by its files' bytes, a hub id by its name); the runner hands a stage
NAME's model directory, so the stage and dataprep/models/load.py only ever see a directory or a hub id.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dataprep.registry import model_ref_fields


@dataclass(frozen=True)
class ModelRef:
    kind: Literal["node", "dir", "hub"]
    value: str  # the node's name, the directory as written, or the hub id

    @staticmethod
    def parse(value: Any) -> ModelRef | None:
        """None for an unset parameter; ValueError for a mapping that is not `{node: NAME}`. A string is a
        directory when one exists there, else a hub id (decided when the DAG is loaded, as the key is)."""
        if value is None:
            return None
        if isinstance(value, dict):
            if set(value) != {"node"} or not isinstance(value["node"], str):
                raise ValueError("a model node reference is {node: NAME}")
            return ModelRef("node", value["node"])
        return ModelRef("dir" if Path(value).is_dir() else "hub", value)

    def key_doc(self, node_keys: Mapping[str, str]) -> Any:
        """What this reference puts in a cache key: its node's key, its directory's file digests, its id."""
        if self.kind == "node":
            return {"node_key": node_keys[self.value]}
        if self.kind == "dir":
            from dataprep.cache import file_digests  # cache.py keys nodes through this module
            return {"dir": file_digests(self.value)}
        return self.value


def model_refs(params: Any) -> dict[str, ModelRef]:
    """Every model parameter of `params` that is set, parsed."""
    refs = {}
    for key in model_ref_fields(type(params)):
        ref = ModelRef.parse(getattr(params, key))
        if ref is not None:
            refs[key] = ref
    return refs
