"""The one loading path for every model parameter. By the time a stage runs, the runner has turned
`{node: NAME}` into NAME's model directory, so a reference is a local directory or a hub id."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa


def load_tokenizer(ref: str):
    from transformers import AutoTokenizer
    return _offline_hint(ref, AutoTokenizer.from_pretrained)


def load_causal_lm(ref: str):
    from transformers import AutoModelForCausalLM
    model = _offline_hint(ref, AutoModelForCausalLM.from_pretrained)
    return model.eval()


def _offline_hint(ref: str, loader):
    try:
        return loader(ref)
    except OSError as e:
        where = "directory" if Path(ref).exists() else "hub id (is the network reachable?)"
        raise OSError(f"cannot load model {ref!r} as a {where}: {e}") from e


def texts_of(table: pa.Table) -> list[str]:
    """The text a model reads from a row: `text`, or the tokens of a `bio` row (joined without spaces for
    Chinese and Japanese, where tokens are characters)."""
    if "text" in table.column_names:
        return [t or "" for t in table.column("text").to_pylist()]
    langs = table.column("lang").to_pylist()
    return [("" if lang in ("zh", "ja") else " ").join(tokens or [])
            for tokens, lang in zip(table.column("tokens").to_pylist(), langs)]


def device():
    import torch
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
