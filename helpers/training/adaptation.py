"""Domain adaptation before fine-tuning, without questions: TSDAE on the corpus' own chunks.

TSDAE (Wang, Reimers and Gurevych 2021) deletes most words of a passage, encodes what is left into one
vector and trains a decoder, tied to the encoder's weights, to write the whole passage back from that vector
alone. The encoder learns the corpus' vocabulary and what its passages are about; no question is needed.
The library's ``DenoisingAutoEncoderLoss`` is the loss; the noise here is the paper's (delete 60% of the
words) on whitespace words, seeded, so no tokenizer package is needed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

logger = logging.getLogger(__name__)

DELETION_RATIO = 0.6  # the paper's best noise


def delete_words(text: str, rng: random.Random, ratio: float = DELETION_RATIO) -> str:
    """``text`` with each word deleted with probability ``ratio`` (at least one word kept)."""
    words = text.split()
    kept = [word for word in words if rng.random() >= ratio]
    return " ".join(kept or [rng.choice(words)]) if words else text


def denoising_pairs(passages: Sequence[str], seed: int = 42):
    """A ``datasets.Dataset`` of (damaged passage, passage) for ``DenoisingAutoEncoderLoss``."""
    from datasets import Dataset

    rng = random.Random(seed)
    originals = [p for p in passages if p.strip()]
    return Dataset.from_dict({"damaged": [delete_words(p, rng) for p in originals], "original": originals})


def adapt_to_corpus(model, passages: Sequence[str], steps: int, batch_size: int = 8, lr: float = 3e-5,
                    seed: int = 42, progress: bool = False) -> dict:
    """Train ``model`` in place with TSDAE on ``passages`` for ``steps`` steps (fewer when the passages
    run out: one epoch at most) at the paper's constant learning rate; returns the steps taken and the
    mean loss of the first and last quarter."""
    import tempfile

    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import DenoisingAutoEncoderLoss

    from helpers.training.progress import quiet_progress
    from helpers.training.result import edge_means

    data = denoising_pairs(passages, seed).shuffle(seed=seed)
    data = data.select(range(min(len(data), steps * batch_size)))
    loss = DenoisingAutoEncoderLoss(model, tie_encoder_decoder=True)
    card = model.model_card_data  # a widget set here spares the library's sampling of one (behind a bar)
    card.widget = card.widget or [{"text": data[0]["original"]}]
    with tempfile.TemporaryDirectory() as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp, num_train_epochs=1, per_device_train_batch_size=batch_size,
            learning_rate=lr, lr_scheduler_type="constant", weight_decay=0.0, save_strategy="no",
            logging_steps=1, report_to="none", seed=seed, disable_tqdm=not progress,
            dataloader_pin_memory=torch.cuda.is_available())
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss)
        quiet_progress(trainer, progress)
        trainer.train()
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    start, end = edge_means(losses)
    if losses:
        logger.info(f"TSDAE: {trainer.state.global_step} steps on {len(data)} passages, loss (quarter means) "
                    f"{start:.3f} -> {end:.3f}")
    return {"steps": trainer.state.global_step, "passages": len(data), "loss_start": start, "loss_end": end}
