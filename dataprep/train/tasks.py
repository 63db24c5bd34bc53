"""The tasks train_lora fine-tunes for, one registered row each: what a task reads from a row, its model head,
how its examples are encoded and batched, how it is scored and selected, its baselines and its report lines.
Everything else — data, model, the loop, saving — is shared. A new task is one class here, one
`@register` and one test.

An example is (input ids, target): the target is a label id (seq_cls), one label id per piece with -100 on
pieces that do not carry a word's tag (token_cls), or the ids themselves (causal_lm).
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from dataprep.models.load import pad, texts_of
from dataprep.train import baselines as B
from dataprep.train import evaluate as E

Example = tuple[list[int], Any]
TASKS: dict[str, Task] = {}


def register(cls: type[Task]) -> type[Task]:
    TASKS[cls.name] = cls()
    return cls


class Task:
    name: str
    head: str               # the transformers Auto class of the model
    peft_type: str          # the peft TaskType
    labelled = True         # a label vocabulary and a classification head, trained in full
    words = False           # inputs are token lists (is_split_into_words)

    def columns(self, table: pa.Table) -> tuple[list, list]:
        """(inputs, targets) of every row."""
        raise NotImplementedError

    def vocabulary(self, train_targets: list) -> list[str]:
        """The sorted labels the head predicts, from the training rows."""
        return []

    def encode(self, tok, xs: list, ys: list, label_ids: dict[str, int], max_len: int) -> list[Example]:
        raise NotImplementedError

    def target_tensor(self, examples: list[Example], ids, mask):
        """The `labels` a batch of examples is trained on, matching the padded `ids`."""
        raise NotImplementedError

    def scorer(self, labels: list[str], gold: list) -> Scorer:
        """A scorer for one pass over encoded examples whose targets, as the rows hold them, are `gold`."""
        raise NotImplementedError

    def select(self, metrics: dict) -> float:
        """Higher is better: the validation score that selects the checkpoint."""
        raise NotImplementedError

    def headline(self, metrics: dict) -> float:
        """The one number a node's notes carry."""
        raise NotImplementedError

    def baselines(self, train_x: list, train_y: list, test_x: list, test_y: list, labels: list[str]) -> dict:
        return {}

    def report(self, m: dict) -> list[str]:
        raise NotImplementedError


class Scorer:
    """Accumulates one evaluation pass, batch by batch, and turns it into metrics."""

    def add(self, examples: list[Example], batch: dict, out) -> None:
        raise NotImplementedError

    def metrics(self) -> dict:
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------- seq_cls

@register
class SequenceClassification(Task):
    name, head, peft_type = "seq_cls", "AutoModelForSequenceClassification", "SEQ_CLS"

    def columns(self, table):
        return texts_of(table), table.column("label").to_pylist()

    def vocabulary(self, train_targets):
        return sorted(set(train_targets))

    def encode(self, tok, xs, ys, label_ids, max_len):
        ids = tok(xs, truncation=True, max_length=max_len)["input_ids"]
        return [(x, label_ids.get(y, -100)) for x, y in zip(ids, ys)]  # a label unseen in train cannot be learned

    def target_tensor(self, examples, ids, mask):
        import torch
        return torch.tensor([y for _, y in examples], device=ids.device)

    def scorer(self, labels, gold):
        return _LabelScorer(labels)

    def select(self, metrics):
        return metrics["macro_f1"]

    def headline(self, metrics):
        return metrics["accuracy"]

    def baselines(self, train_x, train_y, test_x, test_y, labels):
        return B.classification(train_x, train_y, test_x, test_y, labels)

    def report(self, m):
        base = m["majority_baseline"]
        lines = [f"- accuracy: {m['accuracy']:.3f} (majority baseline '{base['label']}': {base['accuracy']:.3f})",
                 f"- macro-F1: {m['macro_f1']:.3f}", "", "| label | precision | recall | F1 | support |",
                 "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                  for k, v in m["per_class"].items()]
        lines += ["", "| on the same test rows | accuracy | macro-F1 |", "|---|---|---|",
                  f"| this adapter | {m['accuracy']:.3f} | {m['macro_f1']:.3f} |"]
        lines += [f"| baseline: {name} | {b['accuracy']:.3f} | {b['macro_f1']:.3f} |"
                  for name, b in m["baselines"].items()]
        return lines


class _LabelScorer(Scorer):
    def __init__(self, labels: list[str]):
        self.labels, self.gold, self.pred = labels, [], []

    def add(self, examples, batch, out):
        self.gold += [y for _, y in examples]
        self.pred += out.logits.argmax(-1).tolist()

    def metrics(self):
        names = [self.labels[i] if i >= 0 else "<unseen>" for i in self.gold]
        return E.classification(names, [self.labels[i] for i in self.pred], self.labels)


# --------------------------------------------------------------------------------------------- token_cls

# A piece that only marks a word boundary: sentencepiece's ▁ and byte-level BPE's Ġ standing alone. With
# is_split_into_words, a sentencepiece tokenizer turns a Chinese character into ['▁', '科']: the tag must go
# on '科', the piece that carries the word, or a left-to-right model is asked to tag a character it has not
# read yet (Weibo NER scored F1 0.000 that way).
BOUNDARY_ONLY = {"▁", "Ġ"}


def word_heads(word_ids: list[int | None], pieces: list[str]) -> dict[int, int]:
    """{piece position: word index} for the one piece of each word that carries its tag: the word's first
    piece with content, or its first piece when none has any."""
    positions: dict[int, list[int]] = {}
    for k, w in enumerate(word_ids):
        if w is not None:
            positions.setdefault(w, []).append(k)
    heads = {}
    for w, ks in positions.items():
        head = next((k for k in ks if pieces[k] not in BOUNDARY_ONLY), ks[0])
        heads[head] = w
    return heads


@register
class TokenClassification(Task):
    name, head, peft_type = "token_cls", "AutoModelForTokenClassification", "TOKEN_CLS"
    words = True

    def columns(self, table):
        return table.column("tokens").to_pylist(), table.column("tags").to_pylist()

    def vocabulary(self, train_targets):
        return sorted({t for tags in train_targets for t in tags})

    def encode(self, tok, xs, ys, label_ids, max_len):
        enc = tok(xs, is_split_into_words=True, truncation=True, max_length=max_len)
        out = []
        for i, tags in enumerate(ys):
            pieces = tok.convert_ids_to_tokens(enc["input_ids"][i])
            heads = word_heads(enc.word_ids(i), pieces)
            target = [label_ids.get(tags[heads[k]], -100) if k in heads else -100 for k in range(len(pieces))]
            out.append((enc["input_ids"][i], target))
        return out

    def target_tensor(self, examples, ids, mask):
        labels, _ = pad([y for _, y in examples], -100)
        return labels

    def scorer(self, labels, gold):
        return _TagScorer(labels, gold)

    def select(self, metrics):
        return metrics["f1"]

    def headline(self, metrics):
        return metrics["f1"]

    def baselines(self, train_x, train_y, test_x, test_y, labels):
        return B.entities(train_x, train_y, test_x, test_y)

    def report(self, m):
        lines = [f"- entity precision / recall / F1 (strict): {m['precision']:.3f} / {m['recall']:.3f} / "
                 f"{m['f1']:.3f}"]
        lines += ["", "| on the same test rows | precision | recall | entity F1 |", "|---|---|---|---|",
                  f"| this adapter | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} |"]
        lines += [f"| baseline: {name} | {b['precision']:.3f} | {b['recall']:.3f} | {b['f1']:.3f} |"
                  for name, b in m["baselines"].items()]
        return lines


class _TagScorer(Scorer):
    """Entities of whole sentences: a word past max_len is predicted O, and its gold tag still counts, so the
    adapter is scored on the entities its baselines are scored on (not only those that fit)."""

    def __init__(self, labels: list[str], gold: list[list[str]]):
        self.labels, self.full_gold, self.gold, self.pred = labels, gold, [], []

    def add(self, examples, batch, out):
        for (_, y), guessed in zip(examples, out.logits.argmax(-1).tolist()):  # one device read a batch
            tags = self.full_gold[len(self.gold)]
            heads = [k for k, t in enumerate(y) if t != -100]  # the tagged piece of each word that fits, in order
            self.gold.append(list(tags))
            self.pred.append([self.labels[guessed[k]] for k in heads] + ["O"] * (len(tags) - len(heads)))

    def metrics(self):
        return E.entities(self.gold, self.pred)


# --------------------------------------------------------------------------------------------- causal_lm

@register
class CausalLanguageModel(Task):
    name, head, peft_type = "causal_lm", "AutoModelForCausalLM", "CAUSAL_LM"
    labelled = False

    def columns(self, table):
        return texts_of(table), [None] * table.num_rows

    def encode(self, tok, xs, ys, label_ids, max_len):
        return [(x, x) for x in tok(xs, truncation=True, max_length=max_len)["input_ids"]]

    def target_tensor(self, examples, ids, mask):
        return ids.masked_fill(mask == 0, -100)  # the ids themselves, padding excluded

    def scorer(self, labels, gold):
        return _PerplexityScorer()

    def select(self, metrics):
        return -metrics.get("perplexity", float("inf"))

    def headline(self, metrics):
        return metrics["perplexity"]

    def report(self, m):
        return [f"- perplexity: {m['perplexity']:.2f}"]


class _PerplexityScorer(Scorer):
    def __init__(self):
        self.nll, self.tokens = 0.0, 0

    def add(self, examples, batch, out):
        n = int((batch["labels"][:, 1:] != -100).sum())
        self.nll, self.tokens = self.nll + out.loss.item() * n, self.tokens + n

    def metrics(self):
        return {"perplexity": E.perplexity(self.nll, self.tokens), "tokens": self.tokens}


def task_of(table: pa.Table, task: str) -> Task:
    """The task row: the one named, or auto: token_cls for bio rows, seq_cls for the others."""
    if task == "auto":
        task = "token_cls" if "tokens" in table.column_names else "seq_cls"
    return TASKS[task]
