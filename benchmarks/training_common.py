"""What the training benchmarks share: the sample corpus' chunks and offline pairs, and the two recipes."""

from __future__ import annotations

from helpers.core import config
from helpers.training.settings import TrainConfig, seed_recipe


def sample_run(profile: str = "smoke") -> config.RunPaths:
    """runs/bench-training-<profile>/ with the sample PDFs' chunks and offline pairs (built once)."""
    from helpers.chunking.chunkers import build_chunks
    from helpers.questions.generate import build_pairs

    paths = config.run_paths(f"bench-training-{profile}")
    if not paths.chunks.is_file():
        build_chunks(config.SAMPLE_CORPUS_DIR, paths.chunks)
    if not (paths.pairs / "dataset_dict.json").is_file():
        build_pairs(paths.chunks, paths.pairs, profile=profile, generator="offline", progress=False)
    return paths


def recipes(full_dim: int, profile: str | None = None, **shared) -> dict[str, TrainConfig]:
    """The kit's recipe (from ``profile``) and the seed recipe, with ``shared`` settings in both."""
    kit = TrainConfig.from_profile(profile, **shared)
    return {"kit": kit, "seed": seed_recipe(full_dim, max_seq_length=kit.max_seq_length, **shared)}
