"""One embedding store per run: every text is encoded at most once per model and prompt.

Vectors are kept in ``runs/<run>/embeddings/``, one file per (model fingerprint, prompt), each row keyed by
the sha256 of its text. The fingerprint hashes the model's weights, its modules (pooling, normalisation,
maximum length) and its prompts, so a store written by another model or with other settings is never
read: its file has another name, and a file whose recorded fingerprint does not match is refused. Files
are replaced atomically (``helpers.core.io.atomic_path``): a run killed while writing leaves the previous
file or none, never a half-written one that is read as valid.

The corpus-rotation fit, hard-negative mining, every evaluation row and the RAG index read their vectors
from here; the validation during training does not (the model changes at every step).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.core.io import atomic_path

FORMAT = 1
DOCUMENT, QUERY = "document", "query"
STORE_DIRNAME = "embeddings"


class StoreMismatch(ValueError):
    """A store file that belongs to another model, prompt or format, or that cannot be read."""


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
    """The vectors of one (model, prompt): ``keys[i]`` is the text hash of ``vectors[i]``."""

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
        path = self.path(fingerprint, kind)
        meta = {"format": FORMAT, "model": fingerprint, "kind": kind, "prompt": _prompt(model, kind)}
        stored = self._read_or_empty(path, meta)
        index = {k: i for i, k in enumerate(stored.keys)}
        keys = [text_key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in index))
        if missing:
            text_of = dict(zip(keys, texts, strict=True))
            started = time.perf_counter()
            new = _encode(model, [text_of[k] for k in missing], kind, batch_size)
            seconds = time.perf_counter() - started
            vectors = new if not len(stored.keys) else np.concatenate([stored.vectors, new])
            stored = StoreFile([*stored.keys, *missing], vectors,
                               meta | {"encoded": stored.meta.get("encoded", 0) + len(missing),
                                       "seconds": stored.meta.get("seconds", 0.0) + seconds})
            write(path, stored)
            index = {k: i for i, k in enumerate(stored.keys)}
        if not keys:
            return np.zeros((0, stored.vectors.shape[1] if stored.vectors.ndim == 2 else 0), np.float32)
        return stored.vectors[[index[k] for k in keys]]

    def rate(self, model, kind: str = DOCUMENT) -> float | None:
        """Texts per second when ``model`` encoded into this store (None: it encoded nothing here)."""
        path = self.path(model_fingerprint(model), kind)
        try:
            meta = read(path).meta if path.is_file() else {}
        except StoreMismatch:
            return None
        return meta["encoded"] / max(meta["seconds"], 1e-9) if meta.get("encoded") else None

    def path(self, fingerprint: str, kind: str) -> Path:
        return self.root / f"{fingerprint}-{kind}.npz"

    def counts(self) -> list[dict]:
        """Per store file: model fingerprint, kind, vectors stored and texts ever encoded into it."""
        rows = []
        for path in sorted(self.root.glob("*.npz")):
            try:
                stored = read(path)
            except StoreMismatch:
                continue
            rows.append({"model": stored.meta["model"], "kind": stored.meta["kind"],
                         "stored": len(stored.keys), "encoded": stored.meta.get("encoded", 0)})
        return rows

    def _read_or_empty(self, path: Path, meta: dict) -> StoreFile:
        """The file at ``path`` if it was written for ``meta`` (model, prompt, format), else an empty one."""
        if path.is_file():
            try:
                stored = read(path)
                check(stored, meta)
                return stored
            except StoreMismatch as exc:
                print(f"Embedding store {path.name} not used ({exc}): encoding again.")
        return StoreFile([], np.zeros((0, 0), np.float32), meta)


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


def run_store(run_root: Path | str) -> EmbeddingStore:
    """The store of the run whose folder is ``run_root``."""
    return EmbeddingStore(Path(run_root) / STORE_DIRNAME)


def check(stored: StoreFile, expected: dict) -> None:
    """Refuse a file written for another model, prompt or format."""
    for key in ("format", "model", "kind", "prompt"):
        if stored.meta.get(key) != expected[key]:
            raise StoreMismatch(f"written with {key}={stored.meta.get(key)!r}, not {expected[key]!r}")


def write(path: Path, stored: StoreFile) -> None:
    """Write atomically, with a checksum of the vectors so a damaged file is refused on reading."""
    meta = stored.meta | {"checksum": _checksum(stored.keys, stored.vectors)}
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(f, keys=np.array(stored.keys, dtype="U64"), vectors=stored.vectors.astype(np.float32),
                 meta=np.array(json.dumps(meta)))


def read(path: Path) -> StoreFile:
    """A store file whose checksum matches its vectors; :class:`StoreMismatch` otherwise."""
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
