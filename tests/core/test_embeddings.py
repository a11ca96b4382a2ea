"""The run's embedding store: each text encoded once per model, other models' files refused, atomic writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from helpers.core.embeddings import EmbeddingStore, StoredEncoder, StoreMismatch, model_fingerprint, read

TEXTS = ["Passwords have at least fourteen characters.", "Laptops carry full-disk encryption.",
         "Expense claims are filed within 60 days."]


@pytest.fixture
def other_model(fallback_model):
    """The fallback model with another maximum length: other settings, so another fingerprint."""
    from sentence_transformers import SentenceTransformer

    from helpers.core.hf import fallback_model_path

    model = SentenceTransformer(str(fallback_model_path()), device="cpu")
    model.prompts = dict(fallback_model.prompts)
    model.max_seq_length = 32
    return model


def test_each_text_is_encoded_once_and_a_second_store_on_the_same_folder_encodes_nothing(
        tmp_path, fallback_model, spy):
    store = EmbeddingStore(tmp_path)
    first = store.documents(fallback_model, TEXTS[:2])
    both = store.documents(fallback_model, [TEXTS[2], TEXTS[0], TEXTS[0]])
    queries = store.queries(fallback_model, TEXTS[:1])
    assert max(spy.values()) == 1 and len(spy) == 4  # three passages and one query, once each
    spy.clear()

    again = EmbeddingStore(tmp_path)  # a rerun: a new process reads the same folder
    assert np.allclose(again.documents(fallback_model, TEXTS), np.concatenate([first, both[:1]]))
    assert np.allclose(again.queries(fallback_model, TEXTS[:1]), queries)
    assert not spy
    direct = fallback_model.encode_document(TEXTS, convert_to_numpy=True)
    assert np.allclose(again.documents(fallback_model, TEXTS), direct, atol=1e-5)
    assert {(r["kind"], r["stored"], r["encoded"]) for r in again.counts()} == {("document", 3, 3),
                                                                                ("query", 1, 1)}


def test_a_store_written_by_another_model_or_with_other_settings_is_never_read(
        tmp_path, fallback_model, other_model, spy, capsys):
    store = EmbeddingStore(tmp_path)
    assert model_fingerprint(other_model) != model_fingerprint(fallback_model)
    store.documents(fallback_model, TEXTS)
    spy.clear()
    store.documents(other_model, TEXTS)
    assert sum(spy.values()) == len(TEXTS)  # encoded again, not read from the first model's file

    # A file of the first model put where the second model's file belongs is refused, and replaced.
    mine = store.path(model_fingerprint(other_model), "document")
    os.replace(store.path(model_fingerprint(fallback_model), "document"), mine)
    spy.clear()
    vectors = store.documents(other_model, TEXTS)
    assert sum(spy.values()) == len(TEXTS) and "not used" in capsys.readouterr().out
    assert read(mine).meta["model"] == model_fingerprint(other_model)
    assert np.allclose(vectors, other_model.encode_document(TEXTS, convert_to_numpy=True), atol=1e-5)


def test_a_damaged_file_is_refused(tmp_path, fallback_model):
    store = EmbeddingStore(tmp_path)
    store.documents(fallback_model, TEXTS)
    path = store.path(model_fingerprint(fallback_model), "document")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # what a non-atomic writer would leave
    with pytest.raises(StoreMismatch):
        read(path)


def test_a_kill_during_a_write_leaves_the_previous_store_and_nothing_read_as_valid(tmp_path, fallback_model):
    store = EmbeddingStore(tmp_path)
    store.documents(fallback_model, TEXTS[:1])
    path = store.path(model_fingerprint(fallback_model), "document")
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from helpers.core import embeddings
        from helpers.core.models import load_embedding_model

        def half_then_die(f, **arrays):  # write some bytes, then the process is killed mid-write
            f.write(b"PK" + b"0" * 4096); f.flush(); os.kill(os.getpid(), signal.SIGKILL)

        np.savez = half_then_die
        model = load_embedding_model("fallback", device="cpu", quiet=True).model
        embeddings.EmbeddingStore({str(tmp_path)!r}).documents(model, {TEXTS!r})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert path.read_bytes() == before  # the previous file, untouched
    leftovers = [p for p in tmp_path.iterdir() if p != path]
    assert leftovers and all(p.name.startswith(".") and p.suffix == ".tmp" for p in leftovers)
    assert [r["stored"] for r in store.counts()] == [1]  # temporary files are never read
    assert np.allclose(store.documents(fallback_model, TEXTS[:1]),
                       fallback_model.encode_document(TEXTS[:1], convert_to_numpy=True), atol=1e-5)


def test_stored_encoder_serves_library_code_from_the_store(tmp_path, fallback_model, spy):
    store = EmbeddingStore(tmp_path)
    proxy = StoredEncoder(fallback_model, store)
    vectors = proxy.encode_document(TEXTS, normalize_embeddings=True, convert_to_tensor=True)
    assert tuple(vectors.shape) == (3, fallback_model.get_embedding_dimension())
    assert np.allclose(np.linalg.norm(vectors.numpy(), axis=1), 1.0, atol=1e-5)
    spy.clear()
    proxy.encode_document(TEXTS)
    assert not spy and proxy.similarity_fn_name == fallback_model.similarity_fn_name
