"""Models as DAG nodes: build stages that train a tokenizer, a tiny LM or a tiny translator from rows, and
the one loading path every model parameter goes through (hub id, local directory or `{node: NAME}`)."""
from dataprep.models.encoder import pretrain_encoder
from dataprep.models.lm import pretrain_lm
from dataprep.models.tokenizer import train_tokenizer
from dataprep.models.translator import train_translator

__all__ = ["train_tokenizer", "pretrain_lm", "pretrain_encoder", "train_translator"]
