"""Shared fixtures: the offline fallback model, loaded once per test session."""

from __future__ import annotations

import pytest


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
