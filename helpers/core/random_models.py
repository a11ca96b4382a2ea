"""Randomly initialised BERT SentenceTransformers, built offline from the fallback model's tokenizer.

They have no knowledge, only a shape: a ``tiny`` one makes multi-process tests fast, a ``base`` one
(Arctic-embed-m's shape: 12 layers, 768 hidden, CLS pooling, 512 tokens) measures training speed and memory
without downloading Arctic.
"""

from __future__ import annotations

from pathlib import Path

from helpers.core.hf import fallback_model_path

SHAPES = {
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}


def build_random_bert(folder: Path | str, shape: str = "tiny", max_seq_length: int = 512, seed: int = 0
                      ) -> Path:
    """Save a random BERT of ``shape`` (tiny | base) with CLS pooling as a SentenceTransformer folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    if shape not in SHAPES:
        raise ValueError(f"Unknown shape {shape!r}: choose one of {', '.join(SHAPES)}.")
    folder = Path(folder)
    backbone_dir = folder / "backbone"
    tokenizer = AutoTokenizer.from_pretrained(str(fallback_model_path()))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=512, **SHAPES[shape])
    BertModel(config).save_pretrained(backbone_dir)
    tokenizer.save_pretrained(backbone_dir)
    transformer = Transformer(str(backbone_dir), max_seq_length=max_seq_length)
    pooling = Pooling(SHAPES[shape]["hidden_size"], pooling_mode="cls")
    SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu").save(str(folder / "model"))
    return folder / "model"
