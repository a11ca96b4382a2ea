"""Shared fixtures: the offline fallback model, loaded once per test session; a spy on encoding."""

from __future__ import annotations

from collections import Counter

import pytest


@pytest.fixture(scope="session", autouse=True)
def kit_messages():
    """The kit's logged lines on stdout, as the CLI and the notebooks show them (tests read them there)."""
    from helpers.core import console

    console.show_messages()


@pytest.fixture(autouse=True)
def fresh_announcements():
    """Each test sees the "Embedding model: ..." line of its first load (a process prints it once)."""
    from helpers.core import models

    models._ANNOUNCED.clear()


@pytest.fixture(scope="session")
def fallback_model():
    """The bundled all-MiniLM-L6-v2 as a SentenceTransformer (query prompt registered)."""
    from helpers.core.models import load_embedding_model

    return load_embedding_model("fallback", device="cpu", quiet=True).model


@pytest.fixture(scope="session")
def static_model_path():
    """The static model distilled from the fallback: made once per machine, then read from the cache."""
    from helpers.core.static_models import distilled_static_path

    return distilled_static_path()


@pytest.fixture
def spy(monkeypatch):
    """Texts encoded, per (model fingerprint, prompt, text), through any SentenceTransformer."""
    from sentence_transformers import SentenceTransformer

    from helpers.core.embeddings import model_fingerprint

    counts: Counter = Counter()
    encode = SentenceTransformer.encode

    def counting(self, inputs, *args, **kwargs):
        fingerprint = model_fingerprint(self)
        prompt = kwargs.get("prompt") or kwargs.get("prompt_name")
        counts.update((fingerprint, prompt, s) for s in ([inputs] if isinstance(inputs, str) else inputs))
        return encode(self, inputs, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "encode", counting)
    return counts
