"""Stage 3, notebook 03_finetuning_arctic_embed: Matryoshka fine-tuning of the embedding model."""

from helpers.training.dims import matryoshka_dims
from helpers.training.trainer import TrainConfig, finetune, load_pairs

__all__ = ["TrainConfig", "finetune", "load_pairs", "matryoshka_dims"]
