"""The records that flow between stages: pages out of the PDF loader, chunks out of the chunker."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


@dataclass
class Page:
    """One page of cleaned text. ``page`` is 1-based."""

    text: str
    source: str  # file name relative to the corpus folder
    page: int
    title: str = ""


@dataclass
class Chunk:
    """A retrievable passage with a stable id and where it came from.

    ``start``/``end`` are character offsets into the document's cleaned text (its pages joined with
    ``"\\n\\n"``), so ``document_text[start:end] == text`` unless a heading was prepended (``heading``).
    """

    text: str
    source: str
    pages: list[int]
    start: int
    end: int
    n_tokens: int = 0
    heading: str = ""
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            self.id = chunk_id(self.source, self.text)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Chunk:
        return cls(**d)


def chunk_id(source: str, text: str) -> str:
    """Stable id: a hash of the document name and the chunk text."""
    return hashlib.sha256(f"{source}\x00{text}".encode()).hexdigest()[:16]
