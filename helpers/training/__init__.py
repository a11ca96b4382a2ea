"""Stage 3, notebook 03_finetuning_arctic_embed: Matryoshka fine-tuning of the embedding model."""

from helpers.training.data import load_pairs
from helpers.training.dims import matryoshka_dims
from helpers.training.settings import TrainConfig
from helpers.training.trainer import finetune, run

__all__ = ["TrainConfig", "finetune", "load_pairs", "matryoshka_dims", "run"]
