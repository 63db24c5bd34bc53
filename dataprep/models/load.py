"""The one loading path for every model parameter. By the time a stage runs, the runner has turned
`{node: NAME}` into NAME's model directory, so a reference is a local directory or a hub id."""
from __future__ import annotations

import contextlib
from pathlib import Path

import pyarrow as pa

from dataprep.errors import DataprepError


@contextlib.contextmanager
def quiet_transformers():
    """transformers reports every load and save with progress bars and notices; inside a pipeline they are
    noise (the runner reports the node). Errors still come through."""
    from transformers.utils import logging
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        logging.enable_progress_bar()


@contextlib.contextmanager
def quiet_peft():
    """peft asks transformers a deprecated question (is_gradient_checkpointing) when it wraps or loads a model;
    the warning is theirs, with nothing for users to act on."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def load_tokenizer(ref: str):
    from transformers import AutoTokenizer
    return _load(ref, AutoTokenizer.from_pretrained)


def load_model(ref: str, auto_class, **kwargs):
    """Any transformers Auto* class (a task head, a causal LM, a seq2seq model) from a directory or hub id."""
    return name_the_loss(_load(ref, lambda r, **more: auto_class.from_pretrained(r, **kwargs, **more)))


def load_model_and_fresh_weights(ref: str, auto_class, **kwargs):
    """(model, names of its weights the checkpoint did not hold): those were initialised fresh, from the seed."""
    model, info = _load(ref, lambda r, **more: auto_class.from_pretrained(r, output_loading_info=True, **kwargs,
                                                                            **more))
    return name_the_loss(model), sorted(info["missing_keys"])


def name_the_loss(model):
    """GPT-2's head class (GPT2LMHeadModel) does not say 'ForCausalLM', so transformers cannot tell its loss
    from the name, prints a notice on every run and falls back to the causal-LM loss. Naming that same loss
    changes nothing computed and ends the notice."""
    from transformers import GenerationMixin
    if getattr(model, "loss_type", "") is None and isinstance(model, GenerationMixin) \
            and not model.config.is_encoder_decoder:
        model.loss_type = "ForCausalLM"
    return model


def load_causal_lm(ref: str):
    from transformers import AutoModelForCausalLM
    return load_model(ref, AutoModelForCausalLM).eval()


def load_seq2seq(ref: str):
    from transformers import AutoModelForSeq2SeqLM
    return load_model(ref, AutoModelForSeq2SeqLM).eval()


class ModelLoadError(DataprepError):
    """A model parameter names nothing that can be loaded here: no such directory, and a hub id that is not
    in the local hub cache and cannot be downloaded."""


HUB_PROBE_SECONDS = 3.0


def _load(ref: str, loader):
    """A directory loads as it is. A hub id loads from the local hub cache first; only when it is not there
    is the hub asked, and an unreachable hub fails in seconds with what to do (transformers would retry for
    a minute and a half, then print a traceback). HF_HUB_OFFLINE=1 never asks the hub."""
    with quiet_transformers():
        if Path(ref).exists():
            try:
                return loader(ref)
            except OSError as e:
                raise ModelLoadError(f"cannot load model {ref!r} from its directory: {_first_line(e)}") from e
        try:
            return loader(ref, local_files_only=True)
        except OSError:
            pass
        _require_hub(ref)
        try:
            return loader(ref)
        except OSError as e:
            raise ModelLoadError(f"cannot load model {ref!r} from the hub: {_first_line(e)}") from e


def _require_hub(ref: str) -> None:
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants
    advice = ("download it where there is a network (`hf download ID --local-dir DIR`) and name the directory, "
              "or build one in the DAG ({node: NAME})")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelLoadError(f"model {ref!r} is not a directory, not in the local hub cache, and HF_HUB_OFFLINE "
                             f"is set: {advice}")
    endpoint = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=HUB_PROBE_SECONDS).close()
    except OSError:
        raise ModelLoadError(f"model {ref!r} is not a directory, not in the local hub cache, and the hub "
                             f"({constants.ENDPOINT}) cannot be reached: {advice}") from None


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def max_positions(config, wanted: int) -> int:
    """`wanted`, capped at the positions the model has embeddings for."""
    limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    return min(wanted, limit) if limit else wanted


def texts_of(table: pa.Table) -> list[str]:
    """The text a model reads from a row: `text`, or the tokens of a `bio` row (joined without spaces for
    Chinese and Japanese, where tokens are characters)."""
    if "text" in table.column_names:
        return [t or "" for t in table.column("text").to_pylist()]
    if "src" in table.column_names:  # parallel rows: the source side
        return [t or "" for t in table.column("src").to_pylist()]
    langs = table.column("lang").to_pylist()
    return [("" if lang in ("zh", "ja") else " ").join(tokens or [])
            for tokens, lang in zip(table.column("tokens").to_pylist(), langs)]


_DEVICE = "cpu"  # set per node by models.compute.torch_for from the node's keyed `device`


def sequences(tok, batches, max_len: int) -> list[list[int]]:
    """The token ids of every input row's text, cut at max_len; rows with no token between <s> and </s> are
    left out (nothing to learn from)."""
    texts = [t for b in batches() for t in texts_of(b)]
    return [x for x in tok(texts, truncation=True, max_length=max_len)["input_ids"] if len(x) > 2]


def device():
    """The device the running node computes on: its `device` param (cpu unless the pipeline says cuda)."""
    import torch
    return torch.device(_DEVICE)


def use_device(name: str) -> None:
    global _DEVICE
    _DEVICE = name


def pad(seqs: list[list[int]], pad_id: int):
    """Right-padded input ids and attention mask (right padding leaves a causal LM's real positions intact)."""
    import torch
    width = max(map(len, seqs))
    x = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return x.to(device()), mask.to(device())
