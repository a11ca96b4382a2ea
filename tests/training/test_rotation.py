"""The corpus rotation: orthogonal, full-dimension scores unchanged, variance moved to the first dims."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.training.rotation import add_corpus_rotation, principal_rotation

PASSAGES = [
    "Passwords must be at least 14 characters long.",
    "Laptops lock the screen after five minutes of inactivity.",
    "Business class is allowed on flights of more than nine hours.",
    "Hotels must not cost more than the nightly cap for the city.",
    "Personnel files are kept for six years after employment ends.",
    "Chemical waste goes into colour-coded containers.",
    "Employees receive 27 days of paid annual leave.",
    "A medical certificate is needed for absences longer than seven days.",
]


def test_principal_rotation_is_orthogonal_and_orders_directions_by_variance():
    rng = np.random.default_rng(0)
    # 200 points that vary mostly along the last axis, then the first
    x = rng.normal(size=(200, 4)) * np.array([3.0, 0.1, 0.1, 10.0])
    r = principal_rotation(x)
    assert np.allclose(r @ r.T, np.eye(4), atol=1e-10)
    assert np.allclose(principal_rotation(5 * x), r)  # fitted on the directions, not the lengths
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    energy = ((unit @ r.T) ** 2).sum(axis=0)
    assert list(np.argsort(-energy)) == [0, 1, 2, 3]
    assert abs(r[0, 3]) > 0.99 and abs(r[1, 0]) > 0.99


def test_principal_rotation_is_square_with_fewer_texts_than_dims():
    r = principal_rotation(np.random.default_rng(1).normal(size=(3, 10)))
    assert r.shape == (10, 10)
    assert np.allclose(r @ r.T, np.eye(10), atol=1e-10)


def test_principal_rotation_with_more_texts_than_dims_is_the_full_decompositions():
    x = np.random.default_rng(2).normal(size=(50, 6))
    full = np.linalg.svd(x / np.linalg.norm(x, axis=1, keepdims=True), full_matrices=True)[2]
    r = principal_rotation(x)
    assert r.shape == (6, 6)
    assert np.allclose(np.abs(r @ full.T), np.eye(6), atol=1e-10)  # the same directions, in the same order


def test_principal_rotation_rejects_no_embeddings():
    with pytest.raises(ValueError, match="non-empty"):
        principal_rotation(np.zeros((0, 8)))


@pytest.fixture
def rotated_copy(fallback_model):
    import copy

    model = copy.deepcopy(fallback_model)
    add_corpus_rotation(model, PASSAGES)
    return model


def test_rotation_keeps_full_dimension_scores(fallback_model, rotated_copy):
    queries = ["How long must a password be?", "How many days of leave do I get?"]
    before = fallback_model.encode_query(queries) @ fallback_model.encode_document(PASSAGES).T
    after = rotated_copy.encode_query(queries) @ rotated_copy.encode_document(PASSAGES).T
    assert np.allclose(before, after, atol=1e-5)


def test_rotation_moves_corpus_variance_into_the_first_dimensions(fallback_model, rotated_copy):
    def share_of_first(model, k=8):
        e = model.encode_document(PASSAGES)
        return (e[:, :k] ** 2).sum() / (e ** 2).sum()

    assert share_of_first(rotated_copy) > 2 * share_of_first(fallback_model)
    assert np.allclose(np.linalg.norm(rotated_copy.encode_document(PASSAGES), axis=1), 1.0, atol=1e-5)


def test_rotated_model_saves_and_reloads(tmp_path, rotated_copy):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense, Normalize

    assert isinstance(rotated_copy[-2], Dense) and isinstance(rotated_copy[-1], Normalize)
    rotated_copy.save(str(tmp_path))
    reloaded = SentenceTransformer(str(tmp_path), device="cpu")
    assert np.allclose(reloaded.encode_document(PASSAGES), rotated_copy.encode_document(PASSAGES), atol=1e-6)


def test_rotation_needs_passages(rotated_copy):
    with pytest.raises(ValueError, match="No passages"):
        add_corpus_rotation(rotated_copy, [])
