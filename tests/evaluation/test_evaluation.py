"""Retrieval evaluation: exact evaluator metrics at every dimension, baselines, error bars, eval.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.core import config
from helpers.core.io import write_jsonl
from helpers.core.schema import Chunk
from helpers.evaluation.metrics import (
    ALL,
    MAX_K,
    METRICS,
    IRData,
    aggregate,
    bm25_scorer,
    bytes_per_vector,
    corpus_of,
    dense_scorer,
    encode_corpus,
    encode_queries,
    evaluate_embeddings,
    evaluate_model,
    id_order,
    ir_from_split,
    per_query_metrics,
    quantized_scorer,
    rank,
    top_k,
)
from helpers.evaluation.stage import disagreement, evaluate_run
from helpers.evaluation.stats import bootstrap_ci, paired_test

DIMS = [384, 256, 128, 64, 32]
TOPICS = ["cats", "dogs", "volcanoes", "income tax", "python programming", "bread baking", "football",
          "jazz music", "rainforests", "satellites"]
ASPECTS = ["The history of {t} goes back centuries and is full of surprises.",
           "How to take care of {t}: a practical guide for beginners.",
           "Ten little-known facts about {t} that experts love to share."]


@pytest.fixture(scope="module")
def chunks() -> list[Chunk]:
    """30 chunks: three aspects of ten topics."""
    return [Chunk(text=a.format(t=t), source=f"{t}.pdf", pages=[1], start=0, end=0)
            for t in TOPICS for a in ASPECTS]


@pytest.fixture(scope="module")
def data(chunks) -> IRData:
    """15 queries: ten with two relevant chunks, five with one."""
    ids = {(c.source, i % 3): c.id for i, c in enumerate(chunks)}
    queries = {f"q{i}": f"Tell me about {t}" for i, t in enumerate(TOPICS)}
    relevant = {f"q{i}": {ids[(f"{t}.pdf", 0)], ids[(f"{t}.pdf", 2)]} for i, t in enumerate(TOPICS)}
    queries |= {f"c{i}": f"how should I look after {t}?" for i, t in enumerate(TOPICS[:5])}
    relevant |= {f"c{i}": {ids[(f"{t}.pdf", 1)]} for i, t in enumerate(TOPICS[:5])}
    return IRData(queries, corpus_of(chunks), relevant)


def test_metrics_match_the_information_retrieval_evaluator_at_every_dim(fallback_model, data):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    ours = evaluate_model(fallback_model, data, DIMS, show_progress=False)
    assert list(ours) == DIMS
    for dim in DIMS:
        theirs = InformationRetrievalEvaluator(data.queries, data.corpus, data.relevant, truncate_dim=dim,
                                               write_csv=False)(fallback_model)
        mine = aggregate(ours[dim])
        assert max(abs(mine[m] - theirs[f"cosine_{m}"]) for m in METRICS) < 1e-6, dim
        assert all(len(v) == len(data.queries) for v in ours[dim].values())


def test_ties_are_broken_by_corpus_id_like_the_evaluator():
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]], dtype=np.float32)
    ids = ["e", "d", "c", "b", "a"]
    assert [ids[j] for j in top_k(scores, id_order(ids), k=3)[0]] == ["d", "b", "c"]


def _sorted_ranking(scores: np.ndarray, ids: list[str], k: int) -> np.ndarray:
    """The reference: every row sorted by (-score, corpus id) in plain Python."""
    return np.array([sorted(range(len(ids)), key=lambda j: (-row[j], ids[j]))[:k] for row in scores])


@pytest.mark.parametrize(("query_block", "corpus_block"), [(1, 1), (5, 7), (16, 64), (256, None)])
def test_blockwise_ranking_equals_the_dense_ranking_ties_included(query_block, corpus_block):
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, size=(37, 53)).astype(np.float32)  # six values: ties everywhere
    ids = [f"doc{n}" for n in rng.permutation(53)]
    expected = _sorted_ranking(scores, ids, MAX_K)
    assert np.array_equal(top_k(scores, id_order(ids), MAX_K), expected)
    ranked = rank(lambda rows, cols: scores[rows, cols], 37, ids, MAX_K, query_block, corpus_block)
    assert np.array_equal(ranked, expected)
    assert np.array_equal(rank(lambda rows, cols: scores[rows, cols], 37, ids, 4, query_block, corpus_block),
                          expected[:, :4])


def test_blockwise_dense_retrieval_equals_the_dense_result_on_random_embeddings_with_ties():
    import torch

    rng = np.random.default_rng(4)
    # Four entries of +-0.5 per vector: unit length and every dot product exact, so ties are exact ties.
    corpus = np.zeros((60, 12), dtype=np.float32)
    for row in corpus:
        row[rng.choice(12, 4, replace=False)] = rng.choice([-0.5, 0.5], 4)
    corpus[30:] = corpus[:30]  # every document twice
    queries = corpus[rng.choice(60, 25)]
    ids = [f"c{n:02d}" for n in rng.permutation(60)]
    q, c = torch.from_numpy(queries), torch.from_numpy(corpus)
    expected = _sorted_ranking(queries @ corpus.T, ids, MAX_K)
    assert np.array_equal(rank(dense_scorer(q, c), 25, ids, MAX_K, 4, 9), expected)
    data = IRData({f"q{i}": "" for i in range(25)}, dict.fromkeys(ids, ""),
                  {f"q{i}": {ids[j] for j in rng.choice(60, 2, replace=False)} for i in range(25)})
    blockwise = per_query_metrics(dense_scorer(q, c), data, corpus_block=7)
    dense = evaluate_embeddings(q, c, data, [12])[12]
    assert all(np.array_equal(blockwise[m], dense[m]) for m in METRICS)


def test_bm25_ranks_the_same_in_blocks_as_over_whole_rows(data):
    score = bm25_scorer(data)
    whole = rank(score, len(data.queries), data.corpus_ids, corpus_block=None)
    assert np.array_equal(rank(score, len(data.queries), data.corpus_ids, MAX_K, 4, 7), whole)
    assert np.array_equal(whole, _sorted_ranking(score(ALL, ALL), data.corpus_ids, MAX_K))


def test_bm25_baseline_is_sane(data):
    per_query = per_query_metrics(bm25_scorer(data), data, corpus_block=None)
    assert set(per_query) == set(METRICS)
    assert all(((v >= 0) & (v <= 1)).all() for v in per_query.values())
    assert per_query["ndcg@10"].mean() > 0.5  # the queries name their topic


def test_a_query_with_no_known_word_scores_zero_with_bm25(chunks):
    data = IRData({"q": "zzz qqq"}, corpus_of(chunks), {"q": {chunks[0].id}})
    assert (bm25_scorer(data)(ALL, ALL) == 0).all()


def test_bootstrap_ci_contains_the_mean_and_narrows_with_more_queries():
    rng = np.random.default_rng(1)
    few, many = rng.random(20), rng.random(2000)
    small, large = bootstrap_ci(few, seed=0), bootstrap_ci(many, seed=0)
    assert small.low <= small.mean <= small.high and large.low <= large.mean <= large.high
    assert small.mean == pytest.approx(few.mean())
    assert large.high - large.low < (small.high - small.low) / 3


def test_paired_test_detects_a_clear_difference_and_not_a_zero_one():
    rng = np.random.default_rng(2)
    base = rng.random(40)
    clear = paired_test(base, np.clip(base + 0.2 + rng.normal(0, 0.05, 40), 0, None))
    assert clear["p_value"] < 0.01 and clear["ci_low"] > 0 and clear["mean_diff"] > 0.1
    same = paired_test(base, base)
    assert same["p_value"] == 1.0 and same["mean_diff"] == 0 and same["ci_low"] == same["ci_high"] == 0
    with pytest.raises(ValueError, match="same queries"):
        paired_test(base, base[:10])


def test_the_paired_interval_excludes_zero_exactly_when_the_test_rejects():
    """The verdict (p < 0.05) and the interval shown beside it never disagree: few queries, ties, both signs.
    A percentile bootstrap interval did, e.g. +0.005 to +0.104 beside p = 0.064 on 28 questions."""
    rng = np.random.default_rng(1)
    agreed = []
    for _ in range(150):
        n = int(rng.integers(2, 120))
        a = rng.random(n)
        b = np.clip(a + rng.normal(rng.normal(0, 0.05), 0.15, n), 0, 1)
        ties = rng.random(n) < 0.3
        b[ties] = a[ties]
        t = paired_test(a, b)
        assert t["ci_low"] <= t["mean_diff"] <= t["ci_high"]
        agreed.append((t["p_value"] < 0.05) == (t["ci_low"] > 0 or t["ci_high"] < 0))
    assert all(agreed)
    few = paired_test(np.zeros(4), np.full(4, 0.3))  # 4 queries: no sign flip is rare enough to reject
    assert few["p_value"] > 0.05 and few["ci_low"] == 0 and few["ci_high"] == pytest.approx(0.3)


def test_the_paired_interval_on_many_queries_is_the_usual_one():
    diff = np.random.default_rng(3).normal(0.02, 0.1, 2000)
    t = paired_test(np.zeros(2000), diff)
    half_width = 1.96 * diff.std(ddof=1) / np.sqrt(2000)
    assert t["ci_low"] == pytest.approx(diff.mean() - half_width, abs=0.1 * half_width)
    assert t["ci_high"] == pytest.approx(diff.mean() + half_width, abs=0.1 * half_width)


def test_a_model_without_query_prompt_is_evaluated_with_a_warning(fallback_model, data, monkeypatch):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    monkeypatch.delitem(fallback_model.prompts, "query")
    with pytest.warns(UserWarning, match="no 'query' prompt"):
        ours = aggregate(evaluate_model(fallback_model, data, show_progress=False)[384])
    evaluator = InformationRetrievalEvaluator(data.queries, data.corpus, data.relevant, write_csv=False)
    theirs = evaluator(fallback_model)
    assert abs(ours["ndcg@10"] - theirs["cosine_ndcg@10"]) < 1e-6


@pytest.mark.parametrize(("queries", "corpus", "relevant", "message"), [
    ({}, {"d": "x"}, {}, "No queries"),
    ({"q": "x"}, {}, {"q": {"d"}}, "corpus is empty"),
    ({"q": "x"}, {"d": "x"}, {"q": set()}, "1 queries have no relevant document"),
    ({"q": "x"}, {"d": "x"}, {"q": {"d"}, "ghost": {"d"}}, "unknown queries"),
    ({"q": "x"}, {"d": "x"}, {"q": {"d", "elsewhere"}}, "not in the corpus"),
])
def test_empty_or_mismatched_qrels_give_a_clear_error(queries, corpus, relevant, message):
    with pytest.raises(ValueError, match=message):
        IRData(queries, corpus, relevant)


def test_storage_costs_and_quantized_scores(fallback_model, data):
    q = encode_queries(fallback_model, list(data.queries.values()), show_progress=False)
    c = encode_corpus(fallback_model, list(data.corpus.values()), show_progress=False)
    assert [bytes_per_vector(384, p) for p in ("float32", "int8", "binary")] == [1536, 384, 48]
    assert bytes_per_vector(36, "binary") == 5
    bits = lambda x: np.unpackbits(np.packbits(x[:, :64].cpu().numpy() > 0, axis=1), axis=1)  # noqa: E731
    hamming = (bits(q)[:, None, :] != bits(c)[None, :, :]).sum(axis=2)
    assert np.array_equal(quantized_scorer(q, c, 64, "binary")(ALL, ALL), -hamming)
    binary = quantized_scorer(q, c, 64, "binary")  # whole numbers: ties everywhere, ranked the same in blocks
    assert np.array_equal(rank(binary, len(data.queries), data.corpus_ids, MAX_K, 4, 7),
                          _sorted_ranking(-hamming, data.corpus_ids, MAX_K))
    for precision in ("int8", "binary"):
        ndcg = per_query_metrics(quantized_scorer(q, c, 128, precision), data)["ndcg@10"].mean()
        assert 0.3 < ndcg <= 1
    with pytest.raises(ValueError, match="Unknown precision"):
        quantized_scorer(q, c, 64, "float16")


def _pairs(chunks, data, path):
    from datasets import Dataset, DatasetDict

    def split(qids):
        rows = [{"id": q, "anchor": data.queries[q], "chunk_id": c, "positive": data.corpus[c],
                 "generator": "test-fixture"} for q in qids for c in sorted(data.relevant[q])[:1]]
        return Dataset.from_list(rows)

    qids = data.query_ids
    splits = {"train": split(qids[:4]), "validation": split(qids[4:6]), "test": split(qids[6:])}
    DatasetDict(splits).save_to_disk(str(path))


def test_ir_from_split_reads_the_test_split(chunks, data, tmp_path):
    _pairs(chunks, data, tmp_path / "pairs")
    test = ir_from_split(tmp_path / "pairs", "test", chunks)
    assert list(test.queries) == data.query_ids[6:] and test.meta["generator"] == ["test-fixture"]
    with pytest.raises(ValueError, match="no 'dev' split"):
        ir_from_split(tmp_path / "pairs", "dev", chunks)
    with pytest.raises(ValueError, match="not in the corpus"):
        ir_from_split(tmp_path / "pairs", "test", chunks[:3])


def test_evaluate_run_writes_eval_json_and_plots(chunks, data, tmp_path, monkeypatch):
    from helpers.core.hf import fallback_model_path

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    paths = config.RunPaths(tmp_path / "run")
    write_jsonl(paths.chunks, [c.to_dict() for c in chunks])
    _pairs(chunks, data, paths.pairs)
    paths.model.symlink_to(fallback_model_path(), target_is_directory=True)  # "fine-tuned" = base

    report = evaluate_run(paths, base_model_id="fallback", query_sets=("test",), static=False)

    assert json.loads(paths.eval.read_text()) == report
    test = report["query_sets"]["test"]
    assert test["n_queries"] == 9 and test["generator"] == ["test-fixture"]
    assert set(test["metrics"]) == {"bm25", "base", "fine-tuned"}
    assert list(test["metrics"]["fine-tuned"]) == ["384", "256", "128", "64"]
    ndcg = test["metrics"]["fine-tuned"]["384"]["ndcg@10"]
    assert ndcg["low"] <= ndcg["mean"] <= ndcg["high"]
    assert test["headline_test"]["mean_diff"] == 0 and test["verdict"] == "no clear difference"
    assert test["worsened"] == [] and report["disagreement"] is None
    assert len(test["storage"]) == 2 * 4 * 3
    assert all(p.endswith(".png") and (paths.plots / p.rsplit("/", 1)[-1]).is_file() for p in report["plots"])


def test_static_models_are_rows_of_the_same_table_with_encode_speed(chunks, data, tmp_path, monkeypatch,
                                                                      static_model_path):
    from helpers.core.hf import fallback_model_path
    from helpers.evaluation.views import SPEED_COLUMN, metrics_frame
    from helpers.pipeline.run_report import retrieval_section

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    paths = config.RunPaths(tmp_path / "run")
    write_jsonl(paths.chunks, [c.to_dict() for c in chunks])
    _pairs(chunks, data, paths.pairs)
    paths.model.symlink_to(fallback_model_path(), target_is_directory=True)
    paths.static_model.symlink_to(static_model_path, target_is_directory=True)  # a "fine-tuned" static

    report = evaluate_run(paths, base_model_id="fallback", query_sets=("test",))

    systems = report["systems"]
    assert systems["static"]["architecture"] == systems["static fine-tuned"]["architecture"] == "static"
    assert systems["base"]["architecture"] == "transformer"
    assert "not available offline" in systems["static"]["reason"]
    assert all(systems[s]["sentences_per_s"] > 0 for s in ("base", "fine-tuned", "static"))
    table = metrics_frame(report, "test")
    assert list(table.loc["static"].index) == ["256", "128", "64"]
    assert table.loc[("static", "256"), SPEED_COLUMN] == systems["static"]["sentences_per_s"]
    assert table.loc[("bm25", "full"), SPEED_COLUMN] == ""
    assert report["retention"]["skipped"] and report["retention"]["reason"] == "HF_HUB_OFFLINE is set"
    assert "skipped: HF_HUB_OFFLINE is set" in retrieval_section(paths).text


def test_disagreement_is_a_plain_sentence():
    def set_report(verdict, diff, p):
        return {"verdict": verdict, "headline_test": {"mean_diff": diff, "p_value": p, "n_queries": 50}}

    agree = {"test": set_report("helped", 0.1, 0.001), "gold": set_report("helped", 0.05, 0.01)}
    assert disagreement(agree) is None
    text = disagreement({"test": set_report("helped", 0.1, 0.001), "gold": set_report("no clear difference",
                                                                                       -0.01, 0.6)})
    assert "disagree" in text and "test questions fine-tuning helped" in text
    assert "gold questions there is no clear difference (-0.010" in text


def test_ir_from_gold_keeps_answerable_questions_with_evidence_in_the_chunks(chunks):
    from helpers.core.gold import Evidence, GoldQuestion
    from helpers.evaluation.metrics import ir_from_gold

    cat_facts = Evidence("cats.pdf", ASPECTS[2].format(t="cats"))
    whales = Evidence("whales.pdf", "Whales sing.")
    questions = [GoldQuestion("g1", "odd facts on cats?", "paraphrase", True, (cat_facts,)),
                 GoldQuestion("g2", "is there a cat census?", "unanswerable", False),
                 GoldQuestion("g3", "do whales sing?", "factoid", True, (whales,))]
    with pytest.warns(UserWarning, match="1 of 2 answerable gold questions"):
        gold = ir_from_gold(chunks, questions)
    assert list(gold.queries) == ["g1"] and gold.relevant["g1"] == {chunks[2].id}
    assert gold.meta["types"] == {"g1": "paraphrase"}
    with pytest.raises(ValueError, match="another corpus"):
        ir_from_gold(chunks, questions[1:])


def test_worsened_queries_list_the_drops_with_what_each_model_retrieved(data):
    from helpers.evaluation.stage import SystemRun, worsened_queries

    n = len(data.queries)
    before, after = np.full(n, 0.5), np.full(n, 0.5)
    before[[1, 4]], after[[1, 4]] = 1.0, [0.2, 0.6]  # query 1 fell most, query 4 less
    top = np.tile(np.arange(3), (n, 1))
    runs = {"base": SystemRun({"384": {"ndcg@10": before}}, top, []),
            "fine-tuned": SystemRun({"384": {"ndcg@10": after}}, top[:, ::-1], [])}
    worse = worsened_queries(data, runs)
    assert [w["id"] for w in worse] == [data.query_ids[1], data.query_ids[4]]
    assert [d["id"] for d in worse[0]["retrieved_fine_tuned"]] == data.corpus_ids[2::-1]
    assert worse[0]["relevant"]
    assert all(set(d) == {"id", "relevant", "text"} for d in worse[0]["retrieved_base"])


def test_the_rotated_base_is_a_separate_row_that_equals_the_base_at_full_dimension(data, tmp_path):
    from helpers.core.embeddings import EmbeddingStore
    from helpers.evaluation.stage import run_systems
    from helpers.evaluation.systems import BASE, BASE_ROTATED

    store = EmbeddingStore(tmp_path)
    systems, runs = run_systems({BASE: "fallback"}, {"q": data}, store, rotated_base=True)

    base, rotated = runs["q"][BASE], runs["q"][BASE_ROTATED]
    assert list(rotated.per_query) == ["384", "256", "128", "64"]
    assert np.allclose(base.per_query["384"]["ndcg@10"], rotated.per_query["384"]["ndcg@10"])
    assert (base.top == rotated.top).all()
    assert "no training" in systems[BASE_ROTATED]["note"] and "note" not in systems[BASE]
    assert BASE_ROTATED not in run_systems({BASE: "fallback"}, {"q": data}, store)[1]["q"]


def test_verdict_reads_the_paired_test_of_fine_tuned_against_base():
    from helpers.evaluation.stage import verdict

    def test(diff, p):
        return {"a": "base", "dim": "384", "mean_diff": diff, "p_value": p}

    assert verdict(test(-0.001, 0.8)) == "no clear difference"
    assert verdict(test(0.05, 0.001)) == "helped"
    assert verdict(test(-0.1, 0.01)) == "hurt"


def test_detectable_difference_is_2_8_standard_errors_and_halves_with_four_times_the_queries():
    from helpers.evaluation.stats import detectable_difference

    rng = np.random.default_rng(1)
    diff = rng.normal(0.0, 0.2, 400)
    few, many = detectable_difference(diff[:100]), detectable_difference(diff)
    assert few == pytest.approx(2.8 * diff[:100].std() / 10, rel=0.15)
    assert many == pytest.approx(few / 2, rel=0.2)
    assert paired_test(diff[:100], np.zeros(100))["detectable_diff"] == pytest.approx(few, rel=0.01)


def test_with_held_out_documents_the_unseen_questions_are_scored_on_their_own(chunks, data, tmp_path):
    import shutil

    from datasets import Dataset, load_from_disk

    from helpers.evaluation.stage import unseen_sets
    from helpers.evaluation.systems import GOLD_UNSEEN
    from helpers.questions.pairs import UNSEEN

    paths = config.RunPaths(tmp_path / "run")
    _pairs(chunks, data, paths.pairs)
    unseen_rows = [{"id": "u0", "anchor": "cat care", "chunk_id": chunks[1].id, "positive": chunks[1].text,
                    "generator": "test-fixture"}]
    pairs = load_from_disk(str(paths.pairs))
    pairs[UNSEEN] = Dataset.from_list(unseen_rows)
    pairs.save_to_disk(str(tmp_path / "with_unseen"))
    paths = config.RunPaths(tmp_path / "run")
    shutil.rmtree(paths.pairs)
    shutil.copytree(tmp_path / "with_unseen", paths.pairs)
    sets = unseen_sets(paths, chunks, ["cats.pdf"], data)
    assert list(sets[UNSEEN].queries) == ["u0"] and sets[UNSEEN].corpus == data.corpus  # the whole corpus
    assert set(sets[GOLD_UNSEEN].queries) == {"q0", "c0"}  # the gold questions answered by cats.pdf only
    assert "never saw (cats.pdf)" in sets[GOLD_UNSEEN].meta["source"]
    assert GOLD_UNSEEN not in unseen_sets(paths, chunks, ["cats.pdf"], data.subset({"q1"}))


def test_the_rotated_base_can_be_fitted_on_the_training_chunks_only(data, tmp_path):
    import torch

    from helpers.evaluation.stage import Encoded
    from helpers.training.rotation import principal_rotation

    corpus = torch.randn(30, 8)
    encoded = Encoded(corpus, {"q": torch.randn(4, 8)}, 1.0)
    rotation = torch.as_tensor(principal_rotation(corpus[:20].numpy()), dtype=corpus.dtype)
    assert torch.allclose(encoded.rotated(range(20)).corpus, corpus @ rotation.T, atol=1e-5)
    assert not torch.allclose(encoded.rotated().corpus, encoded.rotated(range(20)).corpus, atol=1e-3)
