"""The run's embedding store: each text encoded once per model, other models' shards refused, appends that
rewrite no old shard, atomic writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from helpers.core.embeddings import (
    EmbeddingStore,
    StoredEncoder,
    StoreMismatch,
    model_fingerprint,
    read,
    shards,
)

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

    # A shard of the first model put where the second model's shards belong is refused, and set aside.
    mine = store.path(model_fingerprint(other_model), "document")
    foreign = shards(store.path(model_fingerprint(fallback_model), "document"))[0]
    os.replace(foreign, mine / foreign.name)
    spy.clear()
    vectors = store.documents(other_model, TEXTS)
    assert sum(spy.values()) == 0  # its own shard holds them all: the foreign one is only set aside
    assert "not used" in capsys.readouterr().out and (mine / f"{foreign.name}.set-aside").is_file()
    assert [read(p).meta["model"] for p in shards(mine)] == [model_fingerprint(other_model)]
    assert np.allclose(vectors, other_model.encode_document(TEXTS, convert_to_numpy=True), atol=1e-5)


def _files(folder) -> dict:
    """Each file's inode, modification time and bytes."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}


def test_appending_writes_only_the_new_vectors_and_rewrites_no_old_shard(tmp_path, fallback_model, spy):
    store = EmbeddingStore(tmp_path)
    store.documents(fallback_model, TEXTS[:1])
    folder = store.path(model_fingerprint(fallback_model), "document")
    before = _files(folder)
    spy.clear()
    store.documents(fallback_model, TEXTS)
    assert sum(spy.values()) == 2
    after = _files(folder)
    assert {name: after[name] for name in before} == before  # same inode, time and bytes
    new = [read(folder / name) for name in after.keys() - before.keys()]
    assert len(new) == 1 and len(new[0].keys) == 2 and new[0].vectors.shape[0] == 2
    assert store.counts() == [{"model": model_fingerprint(fallback_model), "kind": "document",
                               "stored": 3, "encoded": 3}]


def test_a_damaged_last_shard_is_set_aside_and_only_its_texts_are_encoded_again(
        tmp_path, fallback_model, spy, capsys):
    store = EmbeddingStore(tmp_path)
    store.documents(fallback_model, TEXTS[:1])
    store.documents(fallback_model, TEXTS)
    first, last = shards(store.path(model_fingerprint(fallback_model), "document"))
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # what a non-atomic writer would leave
    with pytest.raises(StoreMismatch):
        read(last)
    spy.clear()
    vectors = store.documents(fallback_model, TEXTS)
    assert sorted(text for (_, _, text) in spy) == sorted(TEXTS[1:]) and max(spy.values()) == 1
    assert "set aside" in capsys.readouterr().out and last.with_name(f"{last.name}.set-aside").is_file()
    assert np.allclose(vectors, fallback_model.encode_document(TEXTS, convert_to_numpy=True), atol=1e-5)
    assert first in shards(first.parent)


def test_a_kill_during_an_append_loses_only_the_unfinished_shard(tmp_path, fallback_model, spy):
    store = EmbeddingStore(tmp_path)
    store.documents(fallback_model, TEXTS[:1])
    folder = store.path(model_fingerprint(fallback_model), "document")
    before = _files(folder)
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
    leftovers = _files(folder).keys() - before.keys()
    assert {name: _files(folder)[name] for name in before} == before  # the finished shard, untouched
    assert leftovers and all(n.startswith(".") and n.endswith(".tmp") for n in leftovers)
    assert [r["stored"] for r in store.counts()] == [1]  # temporary files are never read
    spy.clear()
    vectors = store.documents(fallback_model, TEXTS)
    assert sorted(text for (_, _, text) in spy) == sorted(TEXTS[1:])  # only the lost shard's texts
    assert np.allclose(vectors, fallback_model.encode_document(TEXTS, convert_to_numpy=True), atol=1e-5)


def test_stored_encoder_serves_library_code_from_the_store(tmp_path, fallback_model, spy):
    store = EmbeddingStore(tmp_path)
    proxy = StoredEncoder(fallback_model, store)
    vectors = proxy.encode_document(TEXTS, normalize_embeddings=True, convert_to_tensor=True)
    assert tuple(vectors.shape) == (3, fallback_model.get_embedding_dimension())
    assert np.allclose(np.linalg.norm(vectors.numpy(), axis=1), 1.0, atol=1e-5)
    spy.clear()
    proxy.encode_document(TEXTS)
    assert not spy and proxy.similarity_fn_name == fallback_model.similarity_fn_name
