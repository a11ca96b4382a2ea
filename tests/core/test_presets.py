"""Presets: one table for every base model; offline presets load, online-only ones fall back at once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers.core import config, models, presets
from helpers.training.arguments import oom_advice
from helpers.training.dims import matryoshka_dims
from helpers.training.settings import TrainConfig, seed_recipe

HUB_PRESETS = [name for name, p in presets.PRESETS.items() if not p.offline]


def test_every_preset_resolves_by_name_and_by_model_id():
    for name, preset in presets.PRESETS.items():
        assert presets.resolve(name) is preset
        assert presets.resolve(preset.model_id.upper()) is preset
    assert presets.resolve("sentence-transformers/all-MiniLM-L6-v2") is presets.PRESETS["fallback"]


def test_any_other_model_gets_a_generic_preset(tmp_path):
    bge = presets.resolve("BAAI/bge-small-en-v1.5")
    assert (bge.name, bge.source, bge.kind, bge.query_prompt, bge.dims) == (
        "BAAI/bge-small-en-v1.5", "hub", "transformer", "", ())
    assert bge.t4.loss == "cached_mnrl"  # an unknown size gets the memory-safe loss
    assert presets.resolve("Snowflake/snowflake-arctic-embed-xs").query_prompt == presets.ARCTIC_QUERY_PROMPT
    assert presets.resolve(str(tmp_path)).source == "folder"


def test_the_old_constants_come_from_the_table(monkeypatch):
    monkeypatch.delenv(presets.MODEL_ENV, raising=False)
    assert config.BASE_MODEL_ID == presets.resolve().model_id == "Snowflake/snowflake-arctic-embed-m"
    assert presets.PRESETS["arctic-embed-m-v1.5"].query_prompt == presets.ARCTIC_QUERY_PROMPT
    assert presets.resolve("Snowflake/snowflake-arctic-embed-l").query_prompt == presets.ARCTIC_QUERY_PROMPT
    monkeypatch.setenv(presets.MODEL_ENV, "static-distilled")
    assert presets.resolve().name == "static-distilled"


@pytest.mark.parametrize("preset", presets.PRESETS.values(), ids=list(presets.PRESETS))
def test_dims_start_at_the_full_dimension_and_every_gpu_class_fits(preset):
    assert list(preset.dims) == matryoshka_dims(preset.dims[0])
    t4, a100 = (preset.fit(h) for h in presets.HARDWARE)
    assert t4.precision == "fp16" and a100.precision == "bf16"  # a T4 has no bf16
    for fit in (t4, a100):
        assert (fit.loss == "cached_mnrl") == (fit.mini_batch_size is not None)
        assert (fit.mini_batch_size or 0) < fit.batch_size
    with pytest.raises(ValueError, match="t4-16gb"):
        preset.fit("tpu")


def test_arctic_l_fits_a_useful_batch_on_a_t4_with_the_cached_loss():
    fit = presets.PRESETS["arctic-embed-l"].fit("t4-16gb")
    assert (fit.precision, fit.loss) == ("fp16", "cached_mnrl") and fit.batch_size >= 32


def test_train_config_takes_the_presets_settings_for_the_hardware():
    cpu = TrainConfig.from_profile("smoke", preset="arctic-embed-l", hardware="cpu")
    assert (cpu.batch_size, cpu.lr, cpu.loss, cpu.precision, cpu.preset) == (
        config.get_profile("smoke").batch_size, 1e-5, "mnrl", "auto", "arctic-embed-l")  # CPU: the profile's
    t4 = TrainConfig.from_profile("smoke", preset="arctic-embed-l", hardware="t4-16gb", epochs=2)
    assert (t4.batch_size, t4.loss, t4.mini_batch_size, t4.precision, t4.epochs) == (
        64, "cached_mnrl", 8, "fp16", 2)
    static = TrainConfig.from_profile("smoke", preset="static-distilled", hardware="cpu")
    assert static.lr == presets.PRESETS["static-distilled"].lr > 100 * cpu.lr


def test_out_of_memory_advice_names_the_presets_knobs():
    advice = oom_advice(TrainConfig.from_profile("workshop", preset="arctic-embed-l", hardware="t4-16gb"))
    for knob in ("mini_batch_size=4", "max_seq_length=256", "batch_size=32", "'arctic-embed-l'", "t4-16gb"):
        assert knob in advice
    assert "precision='auto'" in oom_advice(TrainConfig(precision="fp32"))


def test_seed_recipe_of_a_preset_reproduces_its_cards():
    large = seed_recipe(presets.PRESETS["arctic-embed-l"])
    assert (large.batch_size, large.epochs, large.dims, large.lr) == (10, 10, [768, 512, 256, 128, 64], 5e-5)
    static = seed_recipe(presets.PRESETS["static-retrieval"])
    assert (static.batch_size, static.epochs, static.dims) == (256, 15, [512, 256])


def test_only_models_not_made_for_truncation_are_rotated_onto_the_corpus():
    rotated = {name for name, p in presets.PRESETS.items()
               if TrainConfig.from_profile("smoke", preset=p).corpus_rotation}
    assert rotated == {"arctic-embed-m", "arctic-embed-l", "fallback", "mpnet"}
    assert TrainConfig.from_profile("smoke", preset=presets.generic("some/model")).corpus_rotation
    assert not TrainConfig.from_profile("smoke", preset=presets.generic("x", kind="static")).corpus_rotation
    assert not seed_recipe(presets.PRESETS["fallback"]).corpus_rotation


def test_table_has_one_row_per_preset():
    table = presets.table()
    assert list(table.index) == list(presets.PRESETS)
    assert table.loc["arctic-embed-l", "T4 16 GB"] == "64 fp16 cached_mnrl/8"


def test_offline_presets_load_with_no_network(monkeypatch, static_model_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("fallback", "static-distilled"):
        loaded = models.load_embedding_model(name, device="cpu", quiet=True)
        assert loaded.preset.name == name
        assert loaded.model.get_embedding_dimension() == presets.PRESETS[name].dims[0]
        assert models.is_static(loaded.model) == (name == "static-distilled")


@pytest.mark.parametrize("name", HUB_PRESETS)
def test_online_only_presets_fall_back_offline_with_one_line(name, monkeypatch, capsys, static_model_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = models.load_embedding_model(name, device="cpu")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Embedding model:")]
    preset = presets.PRESETS[name]
    stand_in = "static-distilled" if preset.kind == "static" else "fallback"
    assert loaded.preset.name == stand_in and loaded.requested == name
    assert lines == [f"Embedding model: {loaded.loaded} on cpu ({loaded.reason})"]
    assert f"{preset.model_id} not available offline; HF_HUB_OFFLINE is set" in loaded.reason
    assert loaded.model.prompts["query"] == ""  # the stand-in's prompt, not the requested model's


def test_cli_model_option_lists_the_presets():
    out = subprocess.run([sys.executable, "-m", "helpers", "run", "--help"], capture_output=True, text=True,
                         check=True, env={**os.environ, "COLUMNS": "400"}).stdout
    for name in presets.PRESETS:
        assert name in out


V2 = {"arctic-embed-m-v2.0": ("Snowflake/snowflake-arctic-embed-m-v2.0", True, 768, (768, 256), 2e-5),
      "arctic-embed-l-v2.0": ("Snowflake/snowflake-arctic-embed-l-v2.0", False, 1024, (1024, 256), 1e-5)}


@pytest.mark.parametrize("name", V2)
def test_arctic_v2_presets_take_query_prefix_their_remote_code_flag_and_native_256_dims(name):
    model_id, remote_code, full, native, lr = V2[name]
    for key in (name, name.upper(), model_id, model_id.lower(), model_id.upper()):
        preset = presets.resolve(key)
        assert preset is presets.PRESETS[name]
    assert (preset.query_prompt, preset.trust_remote_code, preset.dims[0], preset.native_dims) == (
        "query: ", remote_code, full, native)
    assert preset.pooling == "cls" and preset.max_seq_length == 512
    assert preset.train_settings() == {"lr": lr, "corpus_rotation": False, "preset": name}


def test_only_v2_arctic_ids_get_the_query_prefix_the_older_ones_keep_their_sentence():
    v2, v1 = "query: ", presets.ARCTIC_QUERY_PROMPT
    for model_id, prompt in [("Snowflake/snowflake-arctic-embed-xs-v2.0", v2),
                             ("snowflake/SNOWFLAKE-ARCTIC-EMBED-L-V2.0-int8", v2),
                             ("Snowflake/snowflake-arctic-embed-s", v1),
                             ("Snowflake/snowflake-arctic-embed-m-v1.5-onnx", v1),
                             ("someone/snowflake-arctic-embed-l-v2.0-ko", "")]:
        assert presets.generic(model_id).query_prompt == prompt, model_id
    assert presets.resolve("Snowflake/snowflake-arctic-embed-m-v2.0").query_prompt == v2


def test_only_arctic_m_v2_runs_code_from_its_repo():
    assert {name for name, p in presets.PRESETS.items() if p.trust_remote_code} == {"arctic-embed-m-v2.0"}
    assert not presets.generic("Snowflake/snowflake-arctic-embed-xs-v2.0").trust_remote_code


def test_table_shows_native_dims_and_remote_code():
    table = presets.table()
    assert table.loc["arctic-embed-l-v2.0", "T4 16 GB"] == "64 fp16 cached_mnrl/4"
    assert table.loc["arctic-embed-l-v2.0", "native dims"] == "1024/256"
    assert list(table.index[table["remote code"]]) == ["arctic-embed-m-v2.0"]
    assert table.loc["arctic-embed-m", "native dims"] == ""
