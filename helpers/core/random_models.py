"""Randomly initialised BERT (or XLM-RoBERTa) SentenceTransformers, built offline from the fallback model's
tokenizer.

They have no knowledge, only a shape: a ``tiny`` one makes multi-process tests fast, a ``base`` one
(Arctic-embed-m's shape: 12 layers, 768 hidden, CLS pooling, 512 tokens) measures training speed and memory
without downloading Arctic. An XLM-RoBERTa one stands in for Arctic-embed-l-v2.0's architecture family (with
the fallback's English vocabulary, not its multilingual one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from helpers.core.hf import fallback_model_path

SHAPES = {
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
}


def build_random_bert(folder: Path | str, shape: str = "tiny", max_seq_length: int = 512, seed: int = 0,
                      architecture: Literal["bert", "xlm-roberta"] = "bert") -> Path:
    """Save a random BERT (or XLM-RoBERTa) of ``shape`` (tiny | base) with CLS pooling as a
    SentenceTransformer folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    if shape not in SHAPES:
        raise ValueError(f"Unknown shape {shape!r}: choose one of {', '.join(SHAPES)}.")
    folder = Path(folder)
    backbone_dir = folder / "backbone"
    tokenizer = AutoTokenizer.from_pretrained(str(fallback_model_path()))
    torch.manual_seed(seed)
    if architecture == "bert":
        model = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=512,
                                     **SHAPES[shape]))
    else:  # positions count from the padding id + 1, as in XLM-RoBERTa's own 514
        model = XLMRobertaModel(XLMRobertaConfig(
            vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id,
            max_position_embeddings=512 + tokenizer.pad_token_id + 1, **SHAPES[shape]))
    model.save_pretrained(backbone_dir)
    tokenizer.save_pretrained(backbone_dir)
    transformer = Transformer(str(backbone_dir), max_seq_length=max_seq_length)
    pooling = Pooling(SHAPES[shape]["hidden_size"], pooling_mode="cls")
    SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu").save(str(folder / "model"))
    return folder / "model"
