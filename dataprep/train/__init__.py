"""The bundled trainer: LoRA fine-tuning (lora.py) and its metrics (evaluate.py)."""
from dataprep.train.lora import train_lora

__all__ = ["train_lora"]
