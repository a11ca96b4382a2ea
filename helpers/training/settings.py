"""The settings of a fine-tuning run: ``TrainConfig`` (from a profile and a preset) and ``seed_recipe``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Literal

from helpers.core import config as kit_config
from helpers.core import presets
from helpers.training.dims import matryoshka_dims
from helpers.training.losses import LossName


@dataclass
class TrainConfig:
    """Hyper-parameters of one fine-tuning run (``batch_size`` is per device)."""

    batch_size: int = 32
    epochs: int = 1
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_seq_length: int = 256
    dims: list[int] | None = None  # None: matryoshka_dims(model), full dimension first
    loss: LossName = "mnrl"  # a key of helpers.training.losses.LOSSES
    mini_batch_size: int = 16  # cached_mnrl only: memory is set by this, negatives by batch_size
    # Several processes (torchrun, accelerate): every process's passages are in-batch negatives for every
    # question, batch_size x processes of them, as in one big batch (the library's gather_across_devices).
    gather_across_devices: bool = True
    batch_sampler: Literal["no_duplicates", "batch_sampler"] = "no_duplicates"
    hard_negatives: int = 0  # negatives per question mined with the base model before training (0: none)
    corpus_rotation: bool = True  # rotate onto the corpus' principal directions first (training/rotation.py)
    # Steps of TSDAE on the chunks before all else (training/adaptation.py; 0: none). Off: on MiniLM it cost
    # 0.075 and 0.217 nDCG@10 on the team benchmarks' people's questions (benchmarks/bench_ablation.py).
    tsdae_steps: int = 0
    use_query_prompt: bool = True
    eval_steps: int | None = None  # None: about `evals_per_run` evaluations spread over the run
    save_steps: int | None = None  # None: same as eval_steps (the best checkpoint must be a saved one)
    evals_per_run: int = 4  # at most; fewer when validation would cost more than VALIDATION_BUDGET (0: none)
    eval_on_start: bool = True  # the curves then start at the base model's score
    validation_distractors: int = 64  # chunks besides the validation passages that validation searches
    logging_steps: int | None = None  # None: about 20 points on the loss curve
    save_total_limit: int = 2
    max_steps: int = -1  # > 0 overrides epochs (smoke tests)
    seed: int = 42
    metric_for_best_model: str | None = None  # None: eval_dim_<full>_cosine_ndcg@10
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    # Merge with the starting weights after training (training/merge.py): α from this grid (1 is always
    # scored) up to merge_max_alpha, the guard, by validation. The default saves α = 0.75, three quarters of
    # the way: the kit's own validation questions cannot be trusted to choose (they reward copying words).
    merge_alphas: list[float] = field(default_factory=lambda: [0.75])  # []: off; [0.25, 0.5, 0.75]: a grid
    merge_max_alpha: float = 0.75  # 1: the fine-tuned model may be saved when validation prefers it
    preset: str | None = None  # the preset these settings came from (named in advice)

    @classmethod
    def from_profile(cls, profile: kit_config.Profile | str | None = None,
                     preset: presets.Preset | str | None = None, hardware: str | None = None,
                     **overrides) -> TrainConfig:
        """Sizes from the profile (``KIT_PROFILE`` by default); with a preset, its learning rate and, on a
        GPU, its batch size, precision and loss for ``hardware`` (default: this machine's class, see
        ``presets.hardware_class``); any field overridden by keyword."""
        if not isinstance(profile, kit_config.Profile):
            profile = kit_config.get_profile(profile)
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"Unknown TrainConfig field(s): {', '.join(sorted(unknown))}.")
        sizes = {"batch_size": profile.batch_size, "epochs": profile.epochs,
                 "max_seq_length": profile.max_seq_length,
                 "validation_distractors": profile.validation_distractors}
        if preset is not None:
            preset = presets.resolve(preset) if isinstance(preset, str) else preset
            sizes |= preset.train_settings(hardware or presets.hardware_class())
        return cls(**{**sizes, **overrides})

    def as_dict(self) -> dict:
        return asdict(self)


def seed_recipe(full_dim: int | presets.Preset, **overrides) -> TrainConfig:
    """The recipe this kit improves on, as the seed model cards record it (for comparisons only).

    Batch 10 of plain batches (a chunk with several questions is its own in-batch negative), lr 5e-5
    without warmup or weight decay, fp32 on any hardware, Matryoshka dims that skip the full dimension
    (the seeds train a 1024-dim model at 768 ... 64 only), no query prompt, no hard negatives, no
    validation: the last step is kept. Given a preset, the batch size, epochs and dims of its seed cards
    (``Preset.card``).
    """
    if isinstance(full_dim, presets.Preset):
        full_dim, overrides = full_dim.dims[0], full_dim.card | overrides
    dims = matryoshka_dims(full_dim)[1:] or [full_dim]
    recipe = {"batch_size": 10, "lr": 5e-5, "warmup_ratio": 0.0, "weight_decay": 0.0, "precision": "fp32",
              "batch_sampler": "batch_sampler", "use_query_prompt": False, "dims": dims, "evals_per_run": 0,
              "corpus_rotation": False, "merge_alphas": []}
    return TrainConfig(**{**recipe, **overrides})
