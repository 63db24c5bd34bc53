"""ppl_score: per-row perplexity under a causal LM, batched and memory-bounded."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from dataprep.models.batching import sorted_batches
from dataprep.models.compute import TorchCompute, torch_for
from dataprep.models.load import device, load_causal_lm, load_tokenizer, max_positions, pad, texts_of
from dataprep.registry import SplitScoped, param, stage


@dataclass(frozen=True)
class PplParams(SplitScoped, TorchCompute):
    model: str | dict[str, str] | None = param(None, "a causal LM: {node: NAME} (pretrain_lm), a directory or "
                                               "a hub id", model_ref=True)
    max_len: int = param(256, "tokens scored per text; longer texts are scored on their beginning")
    # In the key, not a knob: which texts share a forward pass changes their padding, and padding the floats.
    max_logits: int = param(1 << 25, "cap on batch tokens x vocabulary per forward pass (memory bound)")

    def __post_init__(self):
        super().__post_init__()
        if self.model is None:
            raise ValueError("ppl_score needs a model, e.g. model: {node: lm}")


@stage("ppl_score", version=1, kind="model", params=PplParams, consumes=("cls", "bio"))
class PplScore:
    """Add a `ppl` column: exp(mean negative log-likelihood of the text's tokens), each token predicted from
    the ones before it (after <s> when the tokenizer has one); padding never counts. Texts are sorted by
    length and packed into batches whose logits stay under `max_logits` floats, scored under inference mode,
    and written back in input order. A text with no token to predict gets a null `ppl`.

    Drop reasons: none (filtering is `ppl_filter`, a separate cheap node).
    """

    def __init__(self, p: PplParams):
        self.p = p
        torch_for(p)
        self.tok, self.model = load_tokenizer(p.model), load_causal_lm(p.model).to(device())
        self.max_len = max_positions(self.model.config, p.max_len)

    def __call__(self, table: pa.Table) -> pa.Table:
        ppl = self.score(texts_of(table))
        column = pa.array(ppl, pa.float64(), mask=np.isnan(ppl))
        if "ppl" in table.column_names:
            table = table.drop_columns(["ppl"])
        return table.append_column("ppl", column)

    def score(self, texts: list[str]) -> np.ndarray:
        import torch

        ids = [self._ids(t) for t in texts]
        out = np.full(len(texts), np.nan)
        lengths = [len(x) for x in ids]
        with torch.inference_mode():
            for batch in sorted_batches(range(len(ids)), lengths, fits=self._fits):
                out[batch] = self._nll([ids[i] for i in batch])
        return np.exp(out)

    def _ids(self, text: str) -> list[int]:
        ids = self.tok(text, truncation=True, max_length=self.max_len)["input_ids"]
        bos = self.tok.bos_token_id
        return ids if bos is None or (ids and ids[0] == bos) else [bos, *ids][: self.max_len]

    def _fits(self, rows: int, longest: int) -> bool:
        """Whether a batch of `rows` texts padded to `longest` keeps its logits under max_logits."""
        return rows * longest * self.model.config.vocab_size <= self.p.max_logits

    def _nll(self, seqs: list[list[int]]) -> np.ndarray:
        """Mean NLL per sequence over its predicted tokens (positions 1..n-1); NaN when there are none."""
        import torch

        x, mask = pad(seqs, self.tok.pad_token_id if self.tok.pad_token_id is not None else 0)
        logits = self.model(input_ids=x, attention_mask=mask).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")
        real = mask[:, 1:].float()
        counts = real.sum(1)
        mean = (nll * real).sum(1) / counts.clamp(min=1)
        return torch.where(counts > 0, mean, torch.tensor(math.nan)).cpu().numpy()
