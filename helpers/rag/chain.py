"""Plug an embedding model into a RAG chain: a Qdrant index of the chunks, a retriever, an answerer.

Qdrant runs in local mode (in memory, or a folder that persists between runs) unless ``QDRANT_URL`` points
at a server; only the client differs. Queries are embedded with the model's ``"query"`` prompt, passages
without one, optionally truncated to a Matryoshka dimension (``truncate_dim``) before they are stored.
"""

from __future__ import annotations

import atexit
import hashlib
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableParallel, RunnablePassthrough
from langchain_huggingface import HuggingFaceEmbeddings
from langchain_qdrant import QdrantVectorStore
from pydantic import BaseModel
from qdrant_client import QdrantClient, models
from tqdm.auto import tqdm

from helpers.core import config
from helpers.core.embeddings import EmbeddingStore, model_fingerprint
from helpers.core.errors import FolderBusyError
from helpers.core.schema import Chunk

NOT_FOUND = "Not in the documents."
INDEX_BATCH = 128


class QdrantFolderBusy(FolderBusyError):
    """The run's Qdrant folder is open in another process (local mode allows one at a time)."""

    def __init__(self, folder: Path | str):
        super().__init__(
            f"The Qdrant index folder {folder} is open in another process (a notebook 05 kernel, or another "
            "run): close it there (notebook 05's \"Close the index\" cell, or restart that kernel), or point "
            "QDRANT_URL at a Qdrant server, and run the same command again.")


class ModelEmbeddings(HuggingFaceEmbeddings):
    """langchain-huggingface's embeddings over an already-loaded SentenceTransformer (no second load).

    Documents are encoded as they are, queries with the model's ``"query"`` prompt; ``truncate_dim`` keeps
    the first dimensions of a Matryoshka-trained model.
    """

    def __init__(self, model, name: str = "model", truncate_dim: int | None = None, batch_size: int = 32):
        kwargs = {"batch_size": batch_size} | ({"truncate_dim": truncate_dim} if truncate_dim else {})
        BaseModel.__init__(self, model_name=name, encode_kwargs=kwargs,
                           query_encode_kwargs=kwargs | {"prompt_name": "query"})
        self._client = model  # HuggingFaceEmbeddings.__init__ would load the model again from its name


def qdrant_client(location: str | Path | None = None) -> QdrantClient:
    """A Qdrant server when ``QDRANT_URL`` is set; else local: in memory (None, ":memory:") or a folder."""
    url, key = config.qdrant_server()
    if url:
        return QdrantClient(url=url, api_key=key)
    if location is None or str(location) == ":memory:":
        return QdrantClient(location=":memory:")
    Path(location).mkdir(parents=True, exist_ok=True)
    try:
        client = QdrantClient(path=str(location))
    except RuntimeError as exc:
        if "already accessed by another instance" not in str(exc):
            raise
        raise QdrantFolderBusy(location) from None
    alive = weakref.ref(client)  # close survivors at exit: closing during interpreter teardown fails noisily
    atexit.register(lambda: alive() and alive().close())
    return client


def collection_name(chunks: Sequence[Chunk], model_fingerprint: str, dim: int) -> str:
    """A name that changes with the chunks, the model (weights and settings) and the dimension."""
    digest = hashlib.sha256("\n".join(c.id for c in chunks).encode())
    digest.update(f"{model_fingerprint}:{dim}".encode())
    return f"chunks-{dim}d-{digest.hexdigest()[:16]}"


def point_id(chunk: Chunk) -> str:
    """Qdrant ids are UUIDs or integers: a UUID derived from the chunk id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"chunk:{chunk.id}"))


def payload(chunk: Chunk) -> dict:
    return {"chunk_id": chunk.id, "source": chunk.source, "pages": chunk.pages, "heading": chunk.heading}


def build_index(chunks: Sequence[Chunk], embeddings: ModelEmbeddings, client: QdrantClient,
                collection: str | None = None, store: EmbeddingStore | None = None) -> QdrantVectorStore:
    """Index ``chunks`` in ``client``; an existing collection of the same name and size is reused as is.

    The chunks' vectors come from ``store`` (the run's embedding store: encoded there at most once) and are
    uploaded as they are; without a store the model encodes them. Queries go through ``embeddings``.
    """
    if not chunks:
        raise ValueError("No chunks to index: run the chunking stage first (notebook 01).")
    model, dim = embeddings._client, embeddings.encode_kwargs.get("truncate_dim")
    dim = dim or model.get_embedding_dimension()
    name = collection or collection_name(chunks, model_fingerprint(model), dim)
    if client.collection_exists(name):
        if client.count(name).count == len(chunks):
            return QdrantVectorStore(client, name, embeddings, validate_collection_config=False)
        client.delete_collection(name)
    params = models.VectorParams(size=dim, distance=models.Distance.COSINE)
    client.create_collection(name, vectors_config=params)
    index = QdrantVectorStore(client, name, embeddings, validate_collection_config=False)
    texts = [c.text for c in chunks]
    vectors = store.documents(model, texts) if store else np.asarray(embeddings.embed_documents(texts))
    with tqdm(total=len(chunks), desc=f"Indexing ({embeddings.model_name}, {dim} dims)", unit="chunk",
              disable=None) as bar:
        for i in range(0, len(chunks), INDEX_BATCH):
            batch = chunks[i:i + INDEX_BATCH]
            client.upsert(name, [models.PointStruct(id=point_id(c), vector=v[:dim].tolist(), payload={
                index.content_payload_key: c.text, index.metadata_payload_key: payload(c)})
                for c, v in zip(batch, vectors[i:i + INDEX_BATCH], strict=True)])
            bar.update(len(batch))
    return index


def citation(doc: Document) -> str:
    """The label an answer cites a passage by, e.g. ``[policy.pdf p.3]`` or ``[policy.pdf pp.3-4]``."""
    pages = doc.metadata.get("pages") or []
    where = "" if not pages else f" p.{pages[0]}" if len(pages) == 1 else f" pp.{pages[0]}-{pages[-1]}"
    return f"[{doc.metadata.get('source', '?')}{where}]"


@dataclass
class RagAnswer:
    """What the chain returns: the answer, the passages it was given and the ones it cites."""

    question: str
    answer: str
    contexts: list[Document]  # retrieved, best first
    cited: list[Document] = field(default_factory=list)
    answerer: str = ""

    @property
    def refused(self) -> bool:
        return self.answer.strip() == NOT_FOUND

    @property
    def citations(self) -> list[str]:
        return list(dict.fromkeys(citation(d) for d in self.cited))

    @property
    def chunk_ids(self) -> list[str]:
        """Ids of the cited chunks."""
        return [d.metadata["chunk_id"] for d in self.cited]

    @property
    def retrieved_ids(self) -> list[str]:
        return [d.metadata["chunk_id"] for d in self.contexts]


def rag_chain(retriever: Runnable, answerer: Runnable) -> Runnable:
    """LCEL: question -> {question, contexts: retriever(question)} -> answerer -> :class:`RagAnswer`."""
    return RunnableParallel(question=RunnablePassthrough(), contexts=retriever) | answerer


@dataclass
class RagSystem:
    """One retriever (a model and its index) with the answerer that turns passages into answers."""

    name: str
    model: object  # helpers.core.models.LoadedModel
    store: QdrantVectorStore
    answerer: Runnable

    def chain(self, k: int = 5) -> Runnable:
        return rag_chain(self.store.as_retriever(search_kwargs={"k": k}), self.answerer)

    def ask(self, question: str, k: int = 5) -> RagAnswer:
        return self.chain(k).invoke(question)


def close_systems(systems: dict[str, RagSystem]) -> None:
    """Close the Qdrant clients of ``systems`` (each once), so that another process can open their folder."""
    for client in {id(s.store.client): s.store.client for s in systems.values()}.values():
        client.close()
