"""What a user chooses for one run, as every stage's ``run(paths, settings)`` receives it: the stages take
their settings from this object, not from the environment or module globals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from helpers.core import config, presets
from helpers.core.llm import LLMSettings, llm_settings


@dataclass
class RunSettings:
    """What a user chooses for one run (the CLI's options)."""

    pdf_dir: Path = config.COURSE_CORPUS_DIR
    model_id: str | None = None
    profile: config.Profile = field(default_factory=config.get_profile)
    run: str | None = None
    runs_dir: Path = field(default_factory=lambda: config.RUNS_DIR)  # read when made: set_runs_dir counts
    generator: str = "auto"
    split: str = "chunks"  # or "documents": some documents kept out of training (helpers.questions)
    force: bool = False
    llm: LLMSettings | None = field(default_factory=llm_settings)  # None: no LLM, the offline paths

    @property
    def paths(self) -> config.RunPaths:
        return config.run_paths(self.run or self.profile.name, self.runs_dir)

    @property
    def preset(self) -> presets.Preset:
        """The chosen base model's preset (``model_id``, else ``$KIT_MODEL``, else the course default)."""
        return presets.resolve(self.model_id)

    @property
    def llm_cache(self) -> Path:
        """The LLM answers' cache, shared by every run in ``runs_dir``."""
        return config.llm_cache_dir(self.runs_dir)
