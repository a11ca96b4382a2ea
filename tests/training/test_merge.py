"""Merging the fine-tuned weights with the starting ones: the two ends of α, the choice of α."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.training.merge import choose_alpha, load_merge, merge_summary, merge_with_start, snapshot

QUERIES = ["How do bees find flowers?", "Why do volcanoes erupt?"]
DOCUMENTS = ["Honey bees dance to show where flowers are.", "Magma and gas push rock to the surface.",
             "Green tea leaves are steamed after picking."]


@pytest.fixture
def rotated_and_tuned(tmp_path):
    """A tiny random BERT with the corpus rotation (the start), its embeddings, and then its weights
    nudged as training would (the model ends holding the "fine-tuned" weights)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from helpers.core.random_models import build_random_bert
    from helpers.training.rotation import add_corpus_rotation

    base = SentenceTransformer(str(build_random_bert(tmp_path, "tiny", max_seq_length=64)), device="cpu")
    base_embeddings = base.encode(DOCUMENTS)
    add_corpus_rotation(base, DOCUMENTS)
    start, start_embeddings = snapshot(base), base.encode(DOCUMENTS)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in base.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return base, start, base_embeddings, start_embeddings, base.encode(DOCUMENTS)


def test_alpha_0_is_the_starting_model_and_alpha_1_the_fine_tuned_one(rotated_and_tuned):
    model, start, base_embeddings, start_embeddings, tuned_embeddings = rotated_and_tuned
    tuned = snapshot(model)
    load_merge(model, start, tuned, 0.0)
    assert np.array_equal(model.encode(DOCUMENTS), start_embeddings)
    load_merge(model, start, tuned, 1.0)
    assert np.array_equal(model.encode(DOCUMENTS), tuned_embeddings)
    load_merge(model, start, tuned, 0.5)
    halfway = model.encode(DOCUMENTS)
    assert not np.allclose(halfway, start_embeddings) and not np.allclose(halfway, tuned_embeddings)


def test_the_starting_model_is_the_base_rotated_so_its_similarities_are_the_bases(rotated_and_tuned):
    _, _, base_embeddings, start_embeddings, _ = rotated_and_tuned
    assert not np.allclose(start_embeddings, base_embeddings, atol=1e-3)
    np.testing.assert_allclose(start_embeddings @ start_embeddings.T, base_embeddings @ base_embeddings.T,
                               atol=1e-5)


@pytest.mark.parametrize(("scores", "expected"), [
    ({0.0: 0.5, 0.25: 0.7, 0.5: 0.7, 0.75: 0.6, 1.0: 0.65}, 0.25),  # best, the smaller of two equals
    ({0.0: 0.4, 0.5: 0.8, 1.0: 0.9}, 1.0),  # no merge as good as the fine-tuned model
    ({0.0: 0.9, 0.5: 0.9, 1.0: 0.9}, 0.0),  # validation cannot tell them apart: closest to the base
])
def test_alpha_is_the_best_and_smallest_and_never_worse_than_fine_tuned(scores, expected):
    assert choose_alpha(scores) == expected


def test_random_grids_never_choose_worse_than_fine_tuned():
    rng = np.random.default_rng(0)
    for _ in range(200):
        scores = dict(zip([0.0, 0.25, 0.5, 0.75, 1.0], rng.choice([0.2, 0.5, 0.8], 5).tolist(), strict=True))
        assert scores[choose_alpha(scores)] >= scores[1.0]


def test_the_guard_never_saves_the_full_fine_tune_when_synthetic_validation_keeps_rising():
    # faq/smoke as measured (benchmarks/bench_guard.py): validation highest at α = 1
    rising = {0.25: 0.723, 0.5: 0.723, 0.75: 0.721, 1.0: 0.737}
    assert choose_alpha(rising) == 1.0, "without the guard the fine-tuned model wins"
    assert choose_alpha(rising, max_alpha=0.75) == 0.25, "the best up to the cap, the smallest of equals"
    assert choose_alpha({0.5: 0.6, 0.75: 0.7, 1.0: 0.8}, max_alpha=0.75) == 0.75
    assert choose_alpha({1.0: 0.8}, max_alpha=0.75) == 1.0, "a grid of α = 1 alone is what the user asked"


def test_the_guard_is_on_by_default_and_the_command_line_can_turn_it_off(monkeypatch, capsys):
    import helpers.training.__main__ as cli
    from helpers.training.settings import TrainConfig

    assert TrainConfig().merge_max_alpha == 0.75
    seen = {}

    class Done:
        def summary(self):
            return {}

    monkeypatch.setattr(cli, "finetune", lambda *a, config, **k: seen.setdefault("cfg", config) and Done())
    cli.main(["--pairs", "p", "--output", "o", "--model", "fallback", "--merge-max-alpha", "1"])
    assert seen["cfg"].merge_max_alpha == 1.0


def load_merged(model, start: dict, tuned: dict, alpha: float):
    load_merge(model, start, tuned, alpha)
    return model


def test_merge_with_start_keeps_the_best_merge_and_records_the_scores(rotated_and_tuned):
    model, start, _, _, _ = rotated_and_tuned
    tuned = snapshot(model)
    load_merge(model, start, tuned, 0.5)
    halfway = model.encode(DOCUMENTS)
    load_merge(model, start, tuned, 1.0)

    def nearness_to_halfway(m) -> float:  # a score that α = 0.5 wins
        return -float(np.abs(m.encode(DOCUMENTS) - halfway).max())

    record = merge_with_start(model, start, nearness_to_halfway, [0.25, 0.5], foreign=nearness_to_halfway)
    assert record["alpha"] == 0.5 and record["grid"] == [0.25, 0.5, 1.0]  # α = 0 is reported, not chosen
    assert record["scores"]["base"] == nearness_to_halfway(load_merged(model, start, tuned, 0.0))
    load_merge(model, start, tuned, 1.0)
    record = merge_with_start(model, start, nearness_to_halfway, [0.25, 0.5], foreign=nearness_to_halfway)
    assert record["scores"]["merged"] == 0.0 > record["scores"]["fine_tuned"]
    assert record["foreign_scores"]["merged"] == 0.0 > record["foreign_scores"]["base"]
    logged = merge_with_start(model, start, nearness_to_halfway, [0.5], start_score=-1.0)
    assert logged["scores"]["base"] == -1.0 and "foreign_scores" not in logged  # training measured α = 0
    assert np.array_equal(model.encode(DOCUMENTS), halfway)
    assert "α = 0.5" in merge_summary(record) and "keeps 50% of the starting weights" in merge_summary(record)
