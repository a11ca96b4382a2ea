"""One embedding store per run: every text is encoded at most once per model and prompt.

Vectors are kept in ``runs/<run>/embeddings/``, one folder per (model fingerprint, prompt), each row keyed
by the sha256 of its text. The folder holds shards: adding texts writes one new shard with only their
vectors, and no earlier shard is rewritten. The fingerprint hashes the model's weights, its modules
(pooling, normalisation, maximum length) and its prompts, so a store written by another model or with
other settings is never read: its folder has another name, and a shard whose recorded fingerprint does not
match is refused. Each shard is checksummed and written atomically (``helpers.core.io.atomic_path``): a
run killed while appending loses only the shard it was writing, never leaves a half-written one that is
read as valid; a shard that is damaged or foreign is set aside (renamed ``*.set-aside``) and only its texts
are encoded again.

The corpus-rotation fit, hard-negative mining, every evaluation row and the RAG index read their vectors
from here; the validation during training does not (the model changes at every step).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.core.config import RunPaths
from helpers.core.io import atomic_path

logger = logging.getLogger(__name__)

FORMAT = 1
DOCUMENT, QUERY = "document", "query"


class StoreMismatch(ValueError):
    """A shard that belongs to another model, prompt or format, or that cannot be read."""


def model_fingerprint(model) -> str:
    """sha256 of a SentenceTransformer's weights, modules (``repr``: pooling, normalisation, maximum length)
    and prompts: equal for two loads of the same model with the same settings, different otherwise."""
    h = hashlib.sha256(json.dumps({"format": FORMAT, "modules": repr(model), "prompts": model.prompts,
                                   "max_seq_length": getattr(model, "max_seq_length", None)},
                                  sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(_uint8()).numpy())
    return h.hexdigest()[:24]


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class StoreFile:
    """Vectors of one (model, prompt), one shard or all: ``keys[i]`` is the text hash of ``vectors[i]``."""

    keys: list[str]
    vectors: np.ndarray  # float32, (len(keys) x dim)
    meta: dict


class EmbeddingStore:
    """The vectors of one run, on disk under ``root`` (``runs/<run>/embeddings``)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def documents(self, model, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Full-dimension passage embeddings of ``texts`` (float32, in order), encoding only new texts."""
        return self.vectors(model, texts, DOCUMENT, batch_size)

    def queries(self, model, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Full-dimension query embeddings (the model's ``"query"`` prompt), encoding only new texts."""
        return self.vectors(model, texts, QUERY, batch_size)

    def vectors(self, model, texts: Sequence[str], kind: str, batch_size: int = 32) -> np.ndarray:
        fingerprint = model_fingerprint(model)
        folder = self.path(fingerprint, kind)
        meta = {"format": FORMAT, "model": fingerprint, "kind": kind, "prompt": _prompt(model, kind)}
        stored = self._read_or_set_aside(folder, meta)
        keys = [text_key(t) for t in texts]
        index = {k: i for i, k in enumerate(stored.keys)}
        missing = list(dict.fromkeys(k for k in keys if k not in index))
        if missing:
            text_of = dict(zip(keys, texts, strict=True))
            started = time.perf_counter()
            new = _encode(model, [text_of[k] for k in missing], kind, batch_size)
            shard = StoreFile(missing, new, meta | {"encoded": len(missing),
                                                    "seconds": time.perf_counter() - started})
            write(folder / f"{len(shards(folder)):06d}-{secrets.token_hex(4)}.npz", shard)
            stored = merge([stored, shard], meta)
            index = {k: i for i, k in enumerate(stored.keys)}
        if not keys:
            return np.zeros((0, stored.vectors.shape[1] if stored.vectors.ndim == 2 else 0), np.float32)
        return stored.vectors[[index[k] for k in keys]]

    def rate(self, model, kind: str = DOCUMENT) -> float | None:
        """Texts per second when ``model`` encoded into this store (None: it encoded nothing here)."""
        meta = merge(_readable(self.path(model_fingerprint(model), kind)), {}).meta
        return meta["encoded"] / max(meta["seconds"], 1e-9) if meta["encoded"] else None

    def path(self, fingerprint: str, kind: str) -> Path:
        """The folder of the shards of one (model, prompt)."""
        return self.root / f"{fingerprint}-{kind}"

    def counts(self) -> list[dict]:
        """Per (model, prompt): model fingerprint, kind, distinct vectors stored and texts ever encoded into
        its shards (more than stored when a text was encoded twice)."""
        rows = []
        for folder in sorted(p for p in self.root.glob("*") if p.is_dir()):
            parts = _readable(folder)
            if parts:
                stored = merge(parts, parts[0].meta)
                rows.append({"model": stored.meta["model"], "kind": stored.meta["kind"],
                             "stored": len(set(stored.keys)), "encoded": stored.meta["encoded"]})
        return rows

    def _read_or_set_aside(self, folder: Path, meta: dict) -> StoreFile:
        """Every shard in ``folder`` written for ``meta`` (model, prompt, format), merged; any other shard
        (damaged, foreign) is renamed ``*.set-aside`` so that its texts are encoded again."""
        parts = []
        for path in shards(folder):
            try:
                part = read(path)
                check(part, meta)
                parts.append(part)
            except StoreMismatch as exc:
                os.replace(path, path.with_name(f"{path.name}.set-aside"))
                logger.info(f"Embedding store shard {folder.name}/{path.name} not used ({exc}): set aside, "
                            "its texts are encoded again.")
        return merge(parts, meta)


class StoredEncoder:
    """``model`` whose ``encode_document`` / ``encode_query`` read ``store`` (for library code that takes a
    model, such as ``mine_hard_negatives``); everything else is the model's."""

    def __init__(self, model, store: EmbeddingStore, batch_size: int = 32) -> None:
        self._model, self._store, self._batch_size = model, store, batch_size

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def encode_document(self, texts, normalize_embeddings: bool = False, convert_to_tensor: bool = False,
                        **_ignored):
        return self._out(self._store.documents(self._model, list(texts), self._batch_size),
                         normalize_embeddings, convert_to_tensor)

    def encode_query(self, texts, normalize_embeddings: bool = False, convert_to_tensor: bool = False,
                     **_ignored):
        return self._out(self._store.queries(self._model, list(texts), self._batch_size),
                         normalize_embeddings, convert_to_tensor)

    def _out(self, vectors: np.ndarray, normalize: bool, tensor: bool):
        if normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms > 0, norms, 1.0)
        if not tensor:
            return vectors
        import torch

        return torch.from_numpy(np.ascontiguousarray(vectors)).to(self._model.device)


def run_store(run: RunPaths | Path | str) -> EmbeddingStore:
    """The store of the run ``run`` (its ``RunPaths``, or its folder)."""
    return EmbeddingStore((run if isinstance(run, RunPaths) else RunPaths(Path(run))).embeddings)


def check(stored: StoreFile, expected: dict) -> None:
    """Refuse a shard written for another model, prompt or format."""
    for key in ("format", "model", "kind", "prompt"):
        if stored.meta.get(key) != expected[key]:
            raise StoreMismatch(f"written with {key}={stored.meta.get(key)!r}, not {expected[key]!r}")


def shards(folder: Path) -> list[Path]:
    """The shard files of one (model, prompt), oldest first (temporary and set-aside files are not shards)."""
    return sorted(folder.glob("*.npz"))


def merge(parts: Sequence[StoreFile], meta: dict) -> StoreFile:
    """Shards as one: their rows in order, ``meta`` with the texts encoded and the seconds summed."""
    totals = {"encoded": sum(p.meta.get("encoded", 0) for p in parts),
              "seconds": sum(p.meta.get("seconds", 0.0) for p in parts)}
    keys = [k for p in parts for k in p.keys]
    vectors = [p.vectors for p in parts if len(p.keys)]
    stacked = np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32)
    return StoreFile(keys, stacked, meta | totals)


def _readable(folder: Path) -> list[StoreFile]:
    """The shards in ``folder`` that can be read (whatever model wrote them)."""
    parts = []
    for path in shards(folder):
        try:
            parts.append(read(path))
        except StoreMismatch:
            continue
    return parts


def write(path: Path, stored: StoreFile) -> None:
    """Write atomically, with a checksum of the vectors so a damaged file is refused on reading."""
    meta = stored.meta | {"checksum": _checksum(stored.keys, stored.vectors)}
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(f, keys=np.array(stored.keys, dtype="U64"), vectors=stored.vectors.astype(np.float32),
                 meta=np.array(json.dumps(meta)))


def read(path: Path) -> StoreFile:
    """A shard whose checksum matches its vectors; :class:`StoreMismatch` otherwise."""
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, vectors, meta = list(data["keys"]), data["vectors"], json.loads(str(data["meta"]))
    except Exception as exc:  # truncated or foreign file: zipfile, pickle, key and JSON errors
        raise StoreMismatch(f"unreadable: {type(exc).__name__}") from None
    if meta.get("checksum") != _checksum(keys, vectors):
        raise StoreMismatch("checksum does not match its vectors")
    return StoreFile(keys, vectors, meta)


def _checksum(keys: Sequence[str], vectors: np.ndarray) -> str:
    h = hashlib.sha256("\n".join(keys).encode())
    h.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return h.hexdigest()


def _prompt(model, kind: str) -> str:
    return (model.prompts or {}).get(kind, "") or ""


def _encode(model, texts: list[str], kind: str, batch_size: int) -> np.ndarray:
    encode = model.encode_query if kind == QUERY else model.encode_document
    vectors = encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def _uint8():
    import torch

    return torch.uint8
