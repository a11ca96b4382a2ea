"""The RAG chain, its Qdrant index and its RAGAS scores, on tiny chunks with the fallback model, offline."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field

import pytest

from helpers.core import config
from helpers.core.gold import Evidence, GoldQuestion, load_gold
from helpers.core.llm import LLMSettings
from helpers.core.schema import Chunk
from helpers.rag.answerer import ExtractiveAnswerer, calibrate_threshold, llm_answerer, sentences
from helpers.rag.chain import NOT_FOUND, ModelEmbeddings, RagSystem, build_index, qdrant_client
from helpers.rag.scoring import context_metrics, rag_evaluate_run, run_config, score_samples, summarize
from helpers.testing.fake_llm import FakeLLM, Reply, prompt_of

TEXTS = [
    ("security.pdf", [3], "Passwords must be at least 14 characters long. Passwords are never shared with "
                          "colleagues. Multi-factor authentication is required for all remote access."),
    ("security.pdf", [4], "Laptops are encrypted with full-disk encryption. A lost laptop is reported to the "
                          "service desk within 24 hours."),
    ("leave.pdf", [2], "Employees may work remotely for up to three days per week. Remote work needs the "
                       "written approval of the line manager."),
    ("travel.pdf", [5, 6], "Travel expenses are reimbursed within 30 days of submitting the receipts. "
                           "Economy class is the default for flights shorter than six hours."),
    ("lab.pdf", [1], "Chemical spills are reported to the laboratory supervisor immediately. Safety goggles "
                     "are worn in every laboratory at all times."),
]
CHUNKS = [Chunk(text, source, pages, 0, len(text)) for source, pages, text in TEXTS]
PASSWORD = CHUNKS[0]


@pytest.fixture(scope="module")
def embeddings(fallback_model):
    return ModelEmbeddings(fallback_model, "fallback")


@pytest.fixture(scope="module")
def store(embeddings):
    return build_index(CHUNKS, embeddings, qdrant_client())


@pytest.fixture(scope="module")
def answerer(fallback_model):
    return ExtractiveAnswerer(fallback_model)


@pytest.fixture(scope="module")
def system(store, answerer):
    return RagSystem("base", None, store, answerer.as_runnable())


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection or tiktoken encoding lookup fails loudly."""
    import tiktoken

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("network blocked in this test")

    def no_tiktoken(*args, **kwargs):
        raise AssertionError("tiktoken was asked for an encoding (it downloads it)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(tiktoken, "get_encoding", no_tiktoken)
    monkeypatch.setattr(tiktoken, "encoding_for_model", no_tiktoken)


# --------------------------------------------------------------------------------- index and chain
def test_queries_take_the_query_prompt_documents_none(fallback_model, monkeypatch):
    monkeypatch.setitem(fallback_model.prompts, "query", "search: ")
    emb = ModelEmbeddings(fallback_model, truncate_dim=64)
    query, doc = emb.embed_query("password length"), emb.embed_documents(["password length"])[0]
    expected_query = fallback_model.encode("search: password length", truncate_dim=64)
    assert len(query) == len(doc) == 64
    assert query == pytest.approx(expected_query.tolist(), abs=1e-5)
    assert query != pytest.approx(doc, abs=1e-3)


def test_chain_answers_from_the_retrieved_context_with_citations(system, no_network):
    answer = system.ask("How long must a password be?", k=3)
    assert "14 characters" in answer.answer
    assert "[security.pdf p.3]" in answer.answer
    assert answer.citations == ["[security.pdf p.3]"]
    assert answer.chunk_ids == [PASSWORD.id]
    assert answer.retrieved_ids[0] == PASSWORD.id and len(answer.retrieved_ids) == 3
    assert answer.answerer == "extractive (offline)" and not answer.refused
    assert answer.contexts[0].metadata | {"_id": None, "_collection_name": None} == {
        "chunk_id": PASSWORD.id, "source": "security.pdf", "pages": [3], "heading": "",
        "_id": None, "_collection_name": None}


def test_multi_page_chunks_cite_a_page_range(system):
    answer = system.ask("When are travel expenses reimbursed?", k=2)
    assert "[travel.pdf pp.5-6]" in answer.answer


def test_unanswerable_gold_questions_get_not_in_the_documents(system, no_network):
    unanswerable = [q for q in load_gold() if not q.answerable]
    assert unanswerable
    for q in unanswerable:
        assert system.ask(q.question, k=3).answer == NOT_FOUND, q.question


def test_sentences_and_threshold_calibration():
    text = "The first point is here. Too short. The second one is longer.\n\n- a bullet item in a list"
    assert sentences(text) == ["The first point is here.", "The second one is longer.",
                               "- a bullet item in a list"]
    assert calibrate_threshold([0.6, 0.7, 0.8], [0.2, 0.3, 0.4]) == pytest.approx(0.5)
    assert calibrate_threshold([0.6, 0.7, 0.8], [0.2, 0.3, 0.75]) == pytest.approx(0.45)  # ties: answer more
    with pytest.raises(ValueError, match="both"):
        calibrate_threshold([0.5], [])


def test_index_folder_persists_and_reloads_without_reembedding(tmp_path, embeddings, monkeypatch):
    embedded: list[int] = []
    original = ModelEmbeddings.embed_documents
    monkeypatch.setattr(ModelEmbeddings, "embed_documents",
                        lambda self, texts: embedded.append(len(texts)) or original(self, texts))
    client = qdrant_client(tmp_path / "qdrant")
    first = build_index(CHUNKS, embeddings, client)
    client.close()
    assert sum(embedded) == len(CHUNKS)

    embedded.clear()
    client = qdrant_client(tmp_path / "qdrant")
    again = build_index(CHUNKS, embeddings, client)
    assert embedded == []  # nothing re-embedded
    assert again.collection_name == first.collection_name
    hits = again.similarity_search("remote work days", k=1)
    assert hits[0].metadata["chunk_id"] == CHUNKS[2].id

    fewer = build_index(CHUNKS[:3], embeddings, client)  # other chunks: another collection
    assert fewer.collection_name != first.collection_name
    client.close()


def test_index_uploads_the_stored_vectors(tmp_path, embeddings, monkeypatch):
    from helpers.core.embeddings import EmbeddingStore

    store = EmbeddingStore(tmp_path / "embeddings")
    store.documents(embeddings._client, [c.text for c in CHUNKS])
    embedded: list[int] = []
    original = ModelEmbeddings.embed_documents
    monkeypatch.setattr(ModelEmbeddings, "embed_documents",
                        lambda self, texts: embedded.append(len(texts)) or original(self, texts))
    index = build_index(CHUNKS, embeddings, qdrant_client(), store=store)
    assert embedded == []  # read from the store, not encoded through LangChain
    assert index.similarity_search("remote work days", k=1)[0].metadata["chunk_id"] == CHUNKS[2].id
    truncated = build_index(CHUNKS, ModelEmbeddings(embeddings._client, truncate_dim=64), qdrant_client(),
                            store=store)
    assert truncated.similarity_search("safety goggles", k=1)[0].metadata["chunk_id"] == CHUNKS[4].id


def test_recall_by_dim_indexes_every_dimension_from_one_stored_encoding(tmp_path, fallback_model):
    from helpers.core.embeddings import EmbeddingStore
    from helpers.rag.queries import EvalQuestion
    from helpers.rag.views import recall_by_dim

    store = EmbeddingStore(tmp_path)
    questions = [EvalQuestion("q1", "How long must a password be?", [PASSWORD.id])]
    rows = recall_by_dim(fallback_model, CHUNKS, questions, [384, 64], k=2, store=store)
    assert [(r["dim"], r["hit_rate@2"]) for r in rows] == [(384, 1.0), (64, 1.0)]
    assert [(r["kind"], r["stored"], r["encoded"]) for r in store.counts()] == [("document", 5, 5)]


def test_truncated_index_stores_fewer_dimensions(fallback_model):
    client = qdrant_client()
    store = build_index(CHUNKS, ModelEmbeddings(fallback_model, truncate_dim=64), client)
    assert client.get_collection(store.collection_name).config.params.vectors.size == 64
    assert store.similarity_search("safety goggles", k=1)[0].metadata["chunk_id"] == CHUNKS[4].id


def test_qdrant_url_selects_a_server_by_the_same_code_path(monkeypatch, tmp_path):
    from helpers.rag import chain as rag

    class Recorder:
        def __init__(self, **options):
            self.options = options

        def close(self) -> None:
            pass

    monkeypatch.setattr(rag, "QdrantClient", Recorder)
    assert qdrant_client().options == {"location": ":memory:"}
    assert qdrant_client(tmp_path / "q").options == {"path": str(tmp_path / "q")}
    monkeypatch.setenv("QDRANT_URL", "http://qdrant:6333")
    monkeypatch.setenv("QDRANT_API_KEY", "secret")
    assert qdrant_client(tmp_path / "q").options == {"url": "http://qdrant:6333", "api_key": "secret"}


def test_llm_answers_through_an_openai_compatible_server(store):
    seen = []

    def reply(body, attempt):
        seen.append(body)
        context = body["messages"][-1]["content"]
        return Reply(f"At least 14 characters {context.split(chr(10))[0]}.")

    with FakeLLM(reply) as llm:
        settings = LLMSettings(model="fake", base_url=llm.base_url, api_key="sk-test")
        answer = RagSystem("base", None, store, llm_answerer(settings)).ask("How long must a password be?", 2)
    assert answer.answerer == "LLM fake"
    assert answer.answer == "At least 14 characters [security.pdf p.3]."
    assert answer.chunk_ids == [PASSWORD.id]
    system, user = seen[0]["messages"]
    assert NOT_FOUND in system["content"] and PASSWORD.text in user["content"]


# ------------------------------------------------------------------------------------------ RAGAS
def sample(retrieved, reference, question="q"):
    from ragas import SingleTurnSample

    return SingleTurnSample(user_input=question, response="a", retrieved_contexts=retrieved,
                            reference_contexts=reference)


def test_non_llm_context_metrics_on_a_tiny_set(no_network):
    a, b, c = (ch.text for ch in CHUNKS[:3])
    samples = [sample([a, b], [a]), sample([b, a], [a]), sample([b, c], [a])]
    scores = score_samples(samples, context_metrics(), run_config(max_workers=2))
    precision = scores["non_llm_context_precision_with_reference"]
    recall = scores["non_llm_context_recall"]
    assert recall["mean"] == pytest.approx(2 / 3, abs=1e-4) and recall["n_scored"] == 3
    assert precision["mean"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-4)
    assert precision["n_failed"] == recall["n_failed"] == 0


@dataclass
class Flaky:
    """A stand-in RAGAS metric that answers by the question: a score, NaN, an error or a hang."""

    name: str = "flaky"
    required_columns: dict = field(default_factory=lambda: {"SINGLE_TURN": {"user_input"}})

    def init(self, run_config) -> None:
        pass

    async def single_turn_ascore(self, sample, timeout=None):
        async def score():
            if sample.user_input == "hang":
                await asyncio.sleep(10)
            if sample.user_input == "boom":
                raise ValueError("judge output could not be parsed")
            return float("nan") if sample.user_input == "nan" else 0.5

        return await asyncio.wait_for(score(), timeout)


def test_nan_and_failed_scores_are_counted_not_averaged():
    samples = [sample(["x"], ["x"], q) for q in ("ok", "nan", "boom", "hang", "ok")]
    result = score_samples(samples, [Flaky()], run_config(timeout=0.5))["flaky"]
    assert result == {"mean": 0.5, "n": 5, "n_scored": 2, "n_nan": 1, "n_failed": 2,
                      "failures": {"ValueError": 1, "TimeoutError": 1}}


def test_real_metric_nan_is_counted():
    scores = score_samples([sample(["x"], []), sample(["x"], ["x"])], context_metrics())
    recall = scores["non_llm_context_recall"]
    assert (recall["n_scored"], recall["n_nan"], recall["mean"]) == (1, 1, 1.0)
    assert summarize([]) == {"mean": None, "n": 0, "n_scored": 0, "n_nan": 0, "n_failed": 0, "failures": {}}


# ----------------------------------------------------------------------------------------- stage
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, fallback_model):
    """A run folder with the tiny chunks, a one-split pairs dataset and a "fine-tuned" model."""
    from datasets import Dataset, DatasetDict

    from helpers.chunking.chunkers import save_chunks

    paths = config.RunPaths(tmp_path_factory.mktemp("run"))
    save_chunks(CHUNKS, paths.chunks)
    rows = [{"id": f"s{i}", "anchor": q, "positive": c.text, "chunk_id": c.id, "generator": "offline:test"}
            for i, (q, c) in enumerate([("remote working days per week", CHUNKS[2]),
                                        ("lost laptop reporting deadline", CHUNKS[1])])]
    DatasetDict({"test": Dataset.from_list(rows)}).save_to_disk(str(paths.pairs))
    fallback_model.save(str(paths.model))
    return paths


GOLD = [
    GoldQuestion("t1", "How long must a password be?", "factoid", True,
                 (Evidence("security.pdf", "Passwords must be at least 14 characters long."),),
                 "At least 14 characters."),
    GoldQuestion("t2", "Which class is used for short flights?", "factoid", True,
                 (Evidence("travel.pdf", "Economy class is the default for flights shorter than six hours"),),
                 "Economy class."),
    GoldQuestion("t3", "Can I bring my dog to the office?", "unanswerable", False, (), None),
]


def test_rag_evaluate_run_offline_writes_counts_and_touches_no_network(tiny_run, no_network, monkeypatch):
    for name in ("OPENAI_API_KEY", "KIT_LLM_BASE_URL", "OPENAI_BASE_URL", "QDRANT_URL"):
        monkeypatch.delenv(name, raising=False)
    result = rag_evaluate_run(tiny_run, base_model_id="fallback", k=2, gold=GOLD)
    assert json.loads(tiny_run.rag_eval.read_text()) == result
    assert result["judge"] == "none" and set(result["systems"]) == {"base", "fine-tuned"}
    assert result["query_sets"] == {"gold": {"n": 3, "answerable": 2},
                                    "synthetic test": {"n": 2, "answerable": 2}}
    gold = result["systems"]["fine-tuned"]["query_sets"]["gold"]
    assert gold["answerer"] == "extractive (offline)" and gold["hit_rate@2"] == 1.0
    assert gold["abstention"]["unanswerable"] == {"n": 1, "refused": 1, "rate": 1.0}
    assert set(gold["metrics"]) == {"non_llm_context_precision_with_reference", "non_llm_context_recall"}
    recall = gold["metrics"]["non_llm_context_recall"]
    assert (recall["n"], recall["n_scored"], recall["n_failed"], recall["mean"]) == (2, 2, 0, 1.0)
    assert "no LLM" in recall["judge"]
    assert tiny_run.qdrant.is_dir() and (tiny_run.plots / "rag_scores.png").is_file()


def test_rag_evaluate_run_with_an_llm_counts_judge_failures(tiny_run, monkeypatch):
    with FakeLLM() as llm:  # answers with prose, never the JSON the RAGAS judge prompts ask for
        monkeypatch.setenv("KIT_LLM_BASE_URL", llm.base_url)
        monkeypatch.setenv("KIT_LLM_MODEL", "fake")
        result = rag_evaluate_run(tiny_run, base_model_id="fallback", k=2, gold=GOLD[:2], max_questions=1)
    gold = result["systems"]["base"]["query_sets"]["gold"]
    assert gold["answerer"] == "LLM fake" and result["judge"].startswith("LLM fake at http://127.0.0.1")
    faithfulness = gold["metrics"]["faithfulness"]
    assert (faithfulness["n"], faithfulness["n_failed"], faithfulness["mean"]) == (1, 1, None)
    assert gold["metrics"]["non_llm_context_recall"]["n_scored"] == 1
    assert "factual_correctness" not in result["systems"]["base"]["query_sets"]["synthetic test"]["metrics"]


def test_a_gold_set_written_for_another_corpus_is_skipped_with_the_reason(tmp_path, capsys):
    from helpers.questions.pairs import to_dataset_dict
    from helpers.rag.queries import gold_questions, query_sets
    from helpers.testing.chunks import sample_chunks

    chunks = sample_chunks(6)  # the testing handbook: none of the bundled gold set's evidence is in it
    with pytest.raises(ValueError, match="written for another corpus"):
        gold_questions(chunks)
    paths = config.RunPaths(tmp_path)
    rows = [{"id": c.id, "anchor": f"About {c.heading}?", "positive": c.text, "chunk_id": c.id,
             "generator": "test"} for c in chunks]
    splits = {"train": rows[:3], "validation": rows[3:4], "test": rows[4:]}
    to_dataset_dict(splits).save_to_disk(str(paths.pairs))
    sets = query_sets(paths, chunks, gold=load_gold())
    assert list(sets) == ["synthetic test"] and len(sets["synthetic test"]) == 2
    assert "Gold questions skipped: No gold question has its evidence" in capsys.readouterr().out


# ----------------------------------------------------------------------------- failed LLM answers
@pytest.fixture
def run_copy(tiny_run, tmp_path, monkeypatch):
    """A fresh copy of the tiny run (its own answer cache and Qdrant folder), with an LLM configured and the
    RAGAS judge left out, so that every request the fake server counts is an answer."""
    import shutil

    from helpers.rag import scoring

    leave_out = shutil.ignore_patterns("qdrant", "rag_answers", "rag_eval.json")
    shutil.copytree(tiny_run.root, tmp_path / "run", ignore=leave_out)
    monkeypatch.setattr(scoring, "judge_metrics", lambda *args: [])
    monkeypatch.setenv("KIT_LLM_MODEL", "fake")
    return config.RunPaths(tmp_path / "run")


def answer_requests(llm: FakeLLM) -> int:
    """Requests the fake server got for RAG answers (their prompt ends with the question)."""
    return llm.count("\n\nQuestion: ")


def test_rag_answers_from_a_hanging_endpoint_are_counted_with_their_cause_and_attempts_honoured(
        run_copy, monkeypatch):
    monkeypatch.setenv("KIT_LLM_TIMEOUT_S", "0.3")
    monkeypatch.setenv("KIT_LLM_MAX_ATTEMPTS", "2")
    with FakeLLM(lambda body, attempt: Reply("too late", delay_s=2)) as llm:
        monkeypatch.setenv("KIT_LLM_BASE_URL", llm.base_url)
        result = rag_evaluate_run(run_copy, base_model_id="fallback", k=2, gold=GOLD)
    answers = result["answers"]
    assert (answers["asked"], answers["answered"], answers["failed"]) == (10, 0, 10) and answers["all_failed"]
    # 8 failures in a row stop the stage: the fine-tuned retriever's last query set is not sent.
    stopped = "not sent: the LLM failed 8 answers in a row (last: timeout (> 0.3 s) after 2 attempts)"
    assert answers["causes"] == {"timeout (> 0.3 s) after 2 attempts": 8, stopped: 2}
    assert "10 of 10 RAG answers failed" in answers["pending"]
    assert sum(llm.received.values()) == 2 * 8  # --llm-attempts 2: two requests per answer, not three
    gold = result["systems"]["fine-tuned"]["query_sets"]["gold"]
    assert gold["answers_failed"] == {"timeout (> 0.3 s) after 2 attempts": 3}
    assert json.loads(run_copy.rag_eval.read_text())["answers"] == answers


def test_failed_rag_answers_are_asked_again_on_the_next_run_and_only_they(run_copy, monkeypatch):
    def flaky(body, attempt):  # the password question fails, every other is answered
        failing = prompt_of(body).endswith(GOLD[0].question)
        return Reply("down", status=500) if failing else Reply("It says so [leave.pdf p.2].")

    monkeypatch.setenv("KIT_LLM_MAX_ATTEMPTS", "1")
    with FakeLLM(flaky) as llm:
        monkeypatch.setenv("KIT_LLM_BASE_URL", llm.base_url)
        first = rag_evaluate_run(run_copy, base_model_id="fallback", k=2, gold=GOLD)["answers"]
        asked_first = answer_requests(llm)
    assert first["failed"] == 2 and first["causes"] == {"server_error (500) after 1 attempt": 2}
    assert not first["all_failed"] and first["answered"] == first["asked"] - 2
    with FakeLLM() as llm:
        monkeypatch.setenv("KIT_LLM_BASE_URL", llm.base_url)
        second = rag_evaluate_run(run_copy, base_model_id="fallback", k=2, gold=GOLD)["answers"]
        # Both retrievers are the same model here, so they send the same messages: one answer serves both.
        assert answer_requests(llm) == 1 and all(p.endswith(GOLD[0].question) for p in llm.received)
    assert asked_first == 6  # 5 by the base retriever; the fine-tuned one reused 4 and asked the failed one
    assert second["failed"] == 0 and second["pending"] is None


def test_answering_stops_after_failures_in_a_row_and_records_the_rest_as_not_sent():
    from langchain_core.runnables import RunnableLambda

    from helpers.core.llm import RequestFailed
    from helpers.rag.queries import EvalQuestion
    from helpers.rag.scoring import Streak, answer_all, failure_counts

    calls = []

    def dead(question):
        calls.append(question)
        raise RequestFailed("connection_error after 4 attempts")

    questions = [EvalQuestion(f"q{i}", f"question {i}?", ["c"]) for i in range(10)]
    streak = Streak(3)  # one per stage: the next query set sends nothing either
    answers = answer_all(RunnableLambda(dead), questions[:5], "set 1", streak=streak)
    answers += answer_all(RunnableLambda(dead), questions[5:], "set 2", streak=streak)
    assert len(calls) == 3 and len(answers) == 10
    assert failure_counts(answers) == {
        "not sent: the LLM failed 3 answers in a row (last: connection_error after 4 attempts)": 7,
        "connection_error after 4 attempts": 3}


def test_a_refused_key_stops_the_rag_stage_with_one_clear_error(run_copy, monkeypatch):
    from helpers.core.llm import LLMError

    with FakeLLM(lambda body, attempt: Reply("bad key", status=401)) as llm:
        monkeypatch.setenv("KIT_LLM_BASE_URL", llm.base_url)
        with pytest.raises(LLMError, match="refused the request \\(HTTP 401\\)"):
            rag_evaluate_run(run_copy, base_model_id="fallback", k=2, gold=GOLD)
    assert not run_copy.rag_eval.exists()


def test_a_qdrant_folder_open_elsewhere_is_one_clear_error(tmp_path):
    import subprocess
    import sys

    from helpers.rag.chain import QdrantFolderBusy

    folder = tmp_path / "qdrant"
    qdrant_client(folder).close()
    hold = (f"import time\nfrom qdrant_client import QdrantClient\nc = QdrantClient(path={str(folder)!r})\n"
            "print('open', flush=True)\ntime.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(QdrantFolderBusy, match="is open in another process .* notebook 05"):
            qdrant_client(folder)
    finally:
        holder.kill()
        holder.wait()
