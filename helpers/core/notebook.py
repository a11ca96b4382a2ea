"""What every notebook prints first: profile, device, base model, LLM, run folder."""

from __future__ import annotations

from helpers.core import config, console, presets


def show_setup(run: str | None = None) -> config.RunPaths:
    """Print the settings this notebook runs with (never an API key) and return the run's paths; show the
    kit's logged lines under the cells; quiet the libraries' load reports (``KIT_VERBOSE=1`` shows them)."""
    from helpers.core.llm import llm_settings
    from helpers.core.models import hub_reachable, pick_device

    console.kit_lines_only()
    profile = config.get_profile()
    paths = config.run_paths(run)
    hub_ok, hub_why = hub_reachable()
    llm = llm_settings()
    print(f"profile    : {profile.name}  (set {config.PROFILE_ENV}=smoke|workshop|full to change)")
    print(f"device     : {pick_device()}")
    preset = presets.resolve()
    stand_in = "distilled static model" if preset.kind == "static" else "offline fallback"
    offline = "" if hub_ok or preset.offline else f"  -> {stand_in} ({hub_why})"
    print(f"base model : {preset.model_id}  (set {presets.MODEL_ENV}=<preset or id> to change){offline}")
    print(f"LLM        : {llm.describe() if llm else 'not configured (offline generator and answerer)'}")
    print(f"run folder : {config.shown(paths.root)}")
    return paths


