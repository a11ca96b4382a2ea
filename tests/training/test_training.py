"""Fine-tuning: Matryoshka dims, the recipe's settings, training, resuming, NaN and OOM handling, DDP."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.core.config import REPO_ROOT, get_profile
from helpers.core.presets import ARCTIC_QUERY_PROMPT, PRESETS
from helpers.core.schema import chunk_id
from helpers.training.checkpoints import COMPLETE_MARKER
from helpers.training.dims import matryoshka_dims
from helpers.training.losses import LOSSES, build_loss
from helpers.training.result import TrainingError, edge_means
from helpers.training.settings import TrainConfig
from helpers.training.trainer import finetune

PASSAGES = {
    "bees": ("Honey bees tell hive mates where flowers are with a waggle dance inside the hive.",
             ["How do honey bees tell each other where flowers are?", "What is the waggle dance for?"]),
    "volcano": ("A volcano erupts when molten magma and dissolved gases force rock up to the surface.",
                ["Why do volcanoes erupt?", "What pushes magma to the surface?"]),
    "tea": ("Green tea leaves are steamed or pan-fired soon after picking to stop oxidation.",
            ["How is green tea processed?", "Why are green tea leaves steamed?"]),
    "chess": ("Castling moves the king two squares toward a rook and puts the rook beside it.",
              ["How does castling work in chess?", "Where does the rook go when castling?"]),
    "bread": ("Sourdough rises because wild yeast and lactic acid bacteria in the starter make gas.",
              ["What makes sourdough bread rise?", "Which microbes live in a sourdough starter?"]),
    "moon": ("The Moon's phases come from the changing angle between the Sun, the Earth and the Moon.",
             ["What causes the phases of the Moon?", "Why does the Moon change shape during a month?"]),
    "rust": ("Iron rusts when it reacts with oxygen and water, forming hydrated iron oxide.",
             ["What is rust made of?", "Which conditions make iron rust?"]),
    "violin": ("A violin sounds when a bow makes its strings vibrate and the wooden body amplifies them.",
               ["How does a violin produce sound?", "What amplifies a violin string's vibration?"]),
    "tides": ("Ocean tides are caused mainly by the Moon's gravity pulling on the Earth's water.",
              ["What causes ocean tides?", "Whose gravity drives the tides?"]),
    "penguin": ("Emperor penguins huddle in large groups to survive the Antarctic winter.",
                ["How do emperor penguins keep warm in winter?", "Why do penguins huddle?"]),
    "bridge": ("A suspension bridge hangs its deck from cables draped over tall towers.",
               ["How is a suspension bridge deck held up?", "What do suspension bridge towers carry?"]),
}


def _rows(keys: list[str], questions_per_passage: int) -> list[dict]:
    return [
        {"id": f"{key}-{i}", "anchor": question, "positive": PASSAGES[key][0],
         "chunk_id": chunk_id("doc.pdf", PASSAGES[key][0]), "generator": "hand-written"}
        for key in keys for i, question in enumerate(PASSAGES[key][1][:questions_per_passage])
    ]


def make_pairs(folder: Path, questions_per_passage: int = 2) -> Path:
    """A pairs DatasetDict like the questions stage writes: 9 passages to train on, 2 to validate."""
    from datasets import Dataset, DatasetDict

    keys = list(PASSAGES)
    pairs = DatasetDict({
        "train": Dataset.from_list(_rows(keys[:9], questions_per_passage)),
        "validation": Dataset.from_list(_rows(keys[9:], 2)),
        "test": Dataset.from_list(_rows(keys[9:], 1)),
    })
    pairs.save_to_disk(str(folder / "pairs"))
    return folder / "pairs"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random 2-layer BERT (128 dims) that stores Arctic's query prompt."""
    from sentence_transformers import SentenceTransformer

    from helpers.core.random_models import build_random_bert

    folder = build_random_bert(tmp_path_factory.mktemp("tiny"), "tiny", max_seq_length=64)
    model = SentenceTransformer(str(folder), device="cpu")
    model.prompts = {"query": ARCTIC_QUERY_PROMPT, "document": ""}
    model.save(str(folder))
    return folder


def tiny_config(**overrides) -> TrainConfig:
    settings = {"batch_size": 4, "max_steps": 2, "eval_steps": 1, "max_seq_length": 64}
    return TrainConfig(**{**settings, **overrides})


@pytest.mark.parametrize(("dim", "expected"), [
    (384, [384, 256, 128, 64]),
    (768, [768, 512, 256, 128, 64]),
    (1024, [1024, 512, 256, 128, 64]),
    (1536, [1536, 1024, 512, 256, 128, 64]),
    (100, [100, 64]),
    (64, [64]),
])
def test_matryoshka_dims_start_at_the_full_dimension(dim, expected):
    assert matryoshka_dims(dim) == expected


def test_matryoshka_dims_of_a_model(fallback_model):
    assert matryoshka_dims(fallback_model) == [384, 256, 128, 64]


def test_config_from_profile_takes_its_sizes_and_overrides():
    profile = get_profile("smoke")
    cfg = TrainConfig.from_profile("smoke", lr=1e-4)
    assert (cfg.batch_size, cfg.epochs, cfg.max_seq_length, cfg.lr) == (
        profile.batch_size, profile.epochs, profile.max_seq_length, 1e-4)
    with pytest.raises(ValueError, match="batchsize"):
        TrainConfig.from_profile("smoke", batchsize=8)


def test_recipe_uses_no_duplicate_batches_the_query_prompt_and_best_checkpoint(tmp_path):
    from sentence_transformers.base.sampler import BatchSamplers

    from helpers.training.arguments import schedule, training_arguments

    cfg = TrainConfig(batch_size=8, epochs=2)
    steps = schedule(cfg, n_train=100)
    args = training_arguments(cfg, tmp_path, steps, query_prompt=ARCTIC_QUERY_PROMPT,
                              metric="eval_dim_768_cosine_ndcg@10", progress=False)
    assert steps["total_steps"] == 26 and steps["save_steps"] % steps["eval_steps"] == 0
    assert args.batch_sampler == BatchSamplers.NO_DUPLICATES
    assert args.prompts == {"anchor": ARCTIC_QUERY_PROMPT}
    assert args.load_best_model_at_end and args.metric_for_best_model == "eval_dim_768_cosine_ndcg@10"
    assert not (args.fp16 or args.bf16)  # CPU: fp32
    assert args.warmup_steps == pytest.approx(0.1) and args.seed == cfg.seed


def test_finetune_changes_weights_lowers_loss_and_saves_a_documented_model(tmp_path, fallback_model):
    import torch
    from sentence_transformers import SentenceTransformer

    from helpers.core.hf import fallback_model_path

    pairs = make_pairs(tmp_path, questions_per_passage=1)  # 9 distinct passages: every step sees them all
    # No merge: MiniLM already ranks the 4 validation questions perfectly, so the merge would keep the start.
    cfg = TrainConfig(batch_size=9, max_steps=3, lr=1e-4, warmup_ratio=0.0, logging_steps=1, eval_steps=3,
                      hard_negatives=1, merge_alphas=[])
    result = finetune(pairs, tmp_path / "model", model_id=str(fallback_model_path()), config=cfg,
                      progress=False)

    assert result.steps == 3 and 0 < result.n_train <= 9 and result.dims == [384, 256, 128, 64]
    assert result.loss_end < result.loss_start
    assert result.best_metric_name == "eval_dim_384_cosine_ndcg@10" and 0 <= result.best_metric <= 1
    tuned = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    before = fallback_model[0].auto_model.embeddings.word_embeddings.weight
    after = tuned[0].auto_model.embeddings.word_embeddings.weight
    assert not torch.equal(before, after)

    card = (tmp_path / "model" / "README.md").read_text()
    for expected in (f"dataset_size:{result.n_train}", "negative_1", "MatryoshkaLoss",
                     "MultipleNegativesRankingLoss", '"matryoshka_dims"',
                     "dim_384_cosine_ndcg@10", "dim_64_cosine_ndcg@10"):
        assert expected in card
    meta = json.loads((tmp_path / "model" / "training_config.json").read_text())
    assert meta["config"]["dims"] == [384, 256, 128, 64] and meta["result"]["steps"] == 3
    log = json.loads((tmp_path / "model" / "train_log.json").read_text())
    assert [row["loss"] for row in log if "loss" in row][0] == result.loss_start  # 3 steps: a quarter is one
    assert (tmp_path / "plots" / "training_curves.png").stat().st_size > 0
    assert not (tmp_path / "checkpoints").exists()
    assert set(result.summary()) >= {"base_model", "is_fallback", "n_train", "steps", "loss_start",
                                     "loss_end", "best_metric", "train_seconds", "pairs_per_second"}


def test_the_merge_with_the_start_and_the_offline_proxy_land_in_training_config(tmp_path, tiny_model):
    from helpers.chunking.chunkers import save_chunks
    from helpers.core.schema import Chunk

    pairs = make_pairs(tmp_path)
    save_chunks([Chunk(text, "doc.pdf", [1], 0, len(text)) for text, _ in PASSAGES.values()],
                tmp_path / "chunks.jsonl")  # not the sample corpus: the proxy runs
    result = finetune(pairs, tmp_path / "model", model_id=str(tiny_model), config=tiny_config(),
                      progress=False)
    merge = json.loads((tmp_path / "model" / "training_config.json").read_text())["result"]["merge"]
    assert merge == json.loads(json.dumps(result.merge)) and merge["grid"] == [0.75, 1.0]
    assert (merge["alpha"], merge["max_alpha"], merge["metric"]) == (0.75, 0.75, "dim_128_cosine_ndcg@10")
    assert merge["scores"]["merged"] == merge["validation"]["0.75"]
    assert merge["scores"]["fine_tuned"] == merge["validation"]["1"]
    log = json.loads((tmp_path / "model" / "train_log.json").read_text())
    assert merge["scores"]["base"] == next(r["eval_" + merge["metric"]] for r in log if r["step"] == 0)
    assert set(merge["foreign"]["scores"]) == {"base", "fine_tuned", "merged"}
    assert (tmp_path / "foreign" / "sample_chunks.jsonl").is_file()


def test_the_merge_can_be_turned_off(tmp_path, tiny_model):
    result = finetune(make_pairs(tmp_path), tmp_path / "model", model_id=str(tiny_model),
                      config=tiny_config(merge_alphas=[]), progress=False)
    assert result.merge == {"skipped": True, "reason": "turned off (TrainConfig.merge_alphas is empty)"}


def test_query_prompt_is_saved_and_reloaded(tmp_path, tiny_model):
    from sentence_transformers import SentenceTransformer

    finetune(make_pairs(tmp_path), tmp_path / "model", model_id=str(tiny_model), config=tiny_config(),
             progress=False)
    reloaded = SentenceTransformer(str(tmp_path / "model"), device="cpu")
    assert reloaded.prompts["query"] == ARCTIC_QUERY_PROMPT


def test_killed_run_resumes_from_its_last_checkpoint_and_finished_run_is_reused(tmp_path, tiny_model):
    from transformers import TrainerCallback

    class Killed(Exception):
        pass

    class KillAfterFirstCheckpoint(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise Killed

    pairs, out = make_pairs(tmp_path), tmp_path / "model"
    cfg = tiny_config(max_steps=4, eval_steps=2, logging_steps=1)
    with pytest.raises(Killed):
        finetune(pairs, out, model_id=str(tiny_model), config=cfg, progress=False,
                 callbacks=[KillAfterFirstCheckpoint()])
    assert (tmp_path / "checkpoints" / "checkpoint-2").is_dir() and not out.exists()

    marker = tmp_path / "checkpoints" / "checkpoint-2" / COMPLETE_MARKER
    assert json.loads(marker.read_text())["train_seconds"] > 0
    marker.write_text(json.dumps({"step": 2, "train_seconds": 1000.0}))  # as if the killed run took 1000 s

    result = finetune(pairs, out, model_id=str(tiny_model), config=cfg, progress=False)
    assert result.resumed_from.endswith("checkpoint-2") and result.steps == 4
    logged_steps = [row["step"] for row in json.loads((out / "train_log.json").read_text()) if "loss" in row]
    assert logged_steps == [1, 2, 3, 4]  # the first two come from the checkpoint
    # Time and speed cover both runs: the killed one's 1000 s plus this one's, not this one's alone.
    assert result.train_seconds > 1000 and result.pairs_per_second < 1

    again = finetune(pairs, out, model_id=str(tiny_model), config=cfg, progress=False)
    assert again.cached and again.steps == 4


def _fail_while_saving_step(monkeypatch, step: int, error: BaseException) -> None:
    """The Trainer raises ``error`` half way through writing checkpoint-<step> (model written, no state)."""
    from sentence_transformers import SentenceTransformerTrainer

    save = SentenceTransformerTrainer._save_optimizer_and_scheduler

    def failing(self, output_dir):
        if self.state.global_step == step:
            raise error
        return save(self, output_dir)

    monkeypatch.setattr(SentenceTransformerTrainer, "_save_optimizer_and_scheduler", failing)


def test_kill_while_saving_a_checkpoint_resumes_from_the_newest_complete_one(tmp_path, tiny_model,
                                                                             monkeypatch, capsys):
    class Killed(BaseException):  # like SIGKILL: nothing in the kit may catch it
        pass

    pairs, out, checkpoints = make_pairs(tmp_path), tmp_path / "model", tmp_path / "checkpoints"
    cfg = tiny_config(max_steps=6, eval_steps=2, logging_steps=1, save_total_limit=3)
    with monkeypatch.context() as patch:
        _fail_while_saving_step(patch, 4, Killed())
        with pytest.raises(Killed):
            finetune(pairs, out, model_id=str(tiny_model), config=cfg, progress=False)
    half_written = checkpoints / "checkpoint-4"
    assert half_written.is_dir() and not (half_written / "trainer_state.json").exists()

    capsys.readouterr()
    result = finetune(pairs, out, model_id=str(tiny_model), config=cfg, progress=False)
    printed = capsys.readouterr().out
    assert result.resumed_from.endswith("checkpoint-2") and result.steps == 6
    assert "checkpoint-4 was not completely written" in printed and "set aside" in printed


def test_full_disk_while_checkpointing_says_so_and_the_rerun_resumes(tmp_path, tiny_model, monkeypatch):
    from helpers.core.diskspace import DiskFullError

    pairs, out = make_pairs(tmp_path), tmp_path / "model"
    cfg = tiny_config(max_steps=4, eval_steps=2, logging_steps=1)
    torch_error = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 9088 vs 8980")
    with monkeypatch.context() as patch:
        _fail_while_saving_step(patch, 4, torch_error)
        with pytest.raises(DiskFullError, match=r"The disk is full at .*free, about .* needed for training"):
            finetune(pairs, out, model_id=str(tiny_model), config=cfg, progress=False)
    result = finetune(pairs, out, model_id=str(tiny_model), config=cfg, progress=False)
    assert result.resumed_from.endswith("checkpoint-2") and result.steps == 4
    assert not (tmp_path / "checkpoints").exists()  # the set-aside checkpoint goes with the others


def test_changed_settings_do_not_resume_from_stale_checkpoints(tmp_path, tiny_model):
    from helpers.training.persistence import prepare_checkpoints

    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "checkpoint-2").mkdir(parents=True)
    assert prepare_checkpoints(checkpoints, "run-a", resume=True) is None
    assert not (checkpoints / "checkpoint-2").exists()


def test_nan_loss_stops_with_advice(tmp_path, tiny_model):
    import torch
    from sentence_transformers import SentenceTransformer

    broken = SentenceTransformer(str(tiny_model), device="cpu")
    with torch.no_grad():
        for parameter in broken.parameters():
            parameter.fill_(math.nan)
    broken.save(str(tmp_path / "broken"))
    with pytest.raises(TrainingError, match="Lower the learning rate"):
        finetune(make_pairs(tmp_path), tmp_path / "model", model_id=str(tmp_path / "broken"),
                 config=tiny_config(eval_on_start=False, corpus_rotation=False), progress=False)
    with pytest.raises(ValueError, match="NaN or infinite"):  # the rotation sees it before training
        finetune(make_pairs(tmp_path), tmp_path / "model", model_id=str(tmp_path / "broken"),
                 config=tiny_config(eval_on_start=False), progress=False)


def test_cuda_out_of_memory_becomes_advice():
    import torch

    from helpers.training.trainer import _train

    class OutOfMemoryTrainer:
        def train(self, resume_from_checkpoint=None):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(TrainingError, match="cached_mnrl") as error:
        _train(OutOfMemoryTrainer(), TrainConfig(batch_size=64, max_seq_length=512), None)
    assert "batch_size=32" in str(error.value) and "max_seq_length=256" in str(error.value)


def test_hard_negatives_are_other_passages(tmp_path, fallback_model):
    from datasets import load_from_disk

    from helpers.training.negatives import add_hard_negatives

    train = load_from_disk(str(make_pairs(tmp_path)))["train"]
    mined = add_hard_negatives(train, fallback_model, relative_margin=0.05)
    assert mined.column_names == ["anchor", "positive", "negative_1"] and len(mined) > 0
    assert all(row["negative_1"] != row["positive"] for row in mined)


def test_two_cpu_processes_train_with_torchrun(tmp_path, tiny_model):
    pairs, out = make_pairs(tmp_path), tmp_path / "model"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command = [*launcher, "-m", "helpers.training", "--pairs", str(pairs), "--output", str(out),
               "--model", str(tiny_model), "--max-steps", "2", "--batch-size", "4", "--max-seq-length", "64",
               "--eval-steps", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.rindex('{\n  "output_dir"'):])
    assert summary["steps"] == 2 and (out / "model.safetensors").is_file()
    assert done.stdout.count('"output_dir"') == 1  # only rank 0 reports


GATHER_WORKER = """
import json, sys
import torch, torch.distributed as dist
from sentence_transformers import SentenceTransformer
from helpers.training.losses import build_loss
from helpers.training.settings import TrainConfig

dist.init_process_group("gloo")
rank = dist.get_rank()
model = SentenceTransformer(sys.argv[1], device="cpu").eval()
questions = [f"what does rule {rank}{i} say?" for i in range(2)]
passages = [f"rule {rank}{i} says that process {rank} keeps passage {i}" for i in range(2)]
out = {}
for gather in (True, False):
    loss = build_loss(model, TrainConfig(gather_across_devices=gather), [model.get_embedding_dimension()],
                      world_size=dist.get_world_size())
    shapes, similarity = [], loss.loss.similarity_fct
    loss.loss.similarity_fct = lambda a, b: shapes.append(tuple(similarity(a, b).shape)) or similarity(a, b)
    with torch.no_grad():
        value = loss([model.tokenize(questions), model.tokenize(passages)], torch.zeros(0))
    out[str(gather)] = {"loss": value.item(), "scores": shapes, "questions": questions, "passages": passages}
json.dump(out, open(f"{sys.argv[2]}/rank{rank}.json", "w"))
dist.destroy_process_group()
"""


def test_two_processes_gather_each_others_passages_as_in_batch_negatives(tmp_path, tiny_model):
    import torch
    from sentence_transformers import SentenceTransformer

    (tmp_path / "worker.py").write_text(GATHER_WORKER)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               str(tmp_path / "worker.py"), str(tiny_model), str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    model = SentenceTransformer(str(tiny_model), device="cpu")
    questions = [model.encode(r["True"]["questions"], convert_to_tensor=True) for r in ranks]
    passages = [model.encode(r["True"]["passages"], convert_to_tensor=True) for r in ranks]

    def expected(rank: int, seen: list) -> float:  # cross-entropy of scale x cosine, the positive labelled
        scores = 20 * torch.nn.functional.normalize(questions[rank], dim=1) @ torch.nn.functional.normalize(
            torch.cat(seen), dim=1).T
        labels = torch.arange(2) + (2 * rank if len(seen) == 2 else 0)
        return torch.nn.functional.cross_entropy(scores, labels).item()

    for rank, run in enumerate(ranks):
        assert run["True"]["scores"] == [[2, 4]] and run["False"]["scores"] == [[2, 2]]  # 2 x batch columns
        assert run["True"]["loss"] == pytest.approx(expected(rank, passages), abs=1e-4)
        assert run["False"]["loss"] == pytest.approx(expected(rank, passages[rank:rank + 1]), abs=1e-4)
        assert run["True"]["loss"] > run["False"]["loss"]  # more negatives, a harder task


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_registered_loss_trains_under_matryoshka(name, tiny_model):
    """Each entry of the registry builds, wrapped in MatryoshkaLoss, and gives a finite loss on a batch."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    loss = build_loss(model, TrainConfig(loss=name, mini_batch_size=2), [128, 64])
    assert type(loss).__name__ == "MatryoshkaLoss"
    questions = ["why do bees dance?", "why is tea steamed?"]
    passages = [PASSAGES["bees"][0], PASSAGES["tea"][0]]
    value = loss([model.tokenize(questions), model.tokenize(passages)], None)
    assert math.isfinite(value.item())


def test_the_gist_loss_leaves_out_a_negative_the_frozen_guide_ranks_above_the_positive(tiny_model):
    """Two questions share one passage: for plain MNRL the twin is a negative it must push away; the guide
    (the starting model, frozen) scores it as high as the positive, so GISTEmbed leaves it out."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    gist = build_loss(model, TrainConfig(loss="gist"), [64]).loss
    guide = gist.guide
    assert guide is not model and not any(p.requires_grad for p in guide.parameters())
    questions = ["why do bees dance?", "how do bees tell the hive where flowers are?", "why is tea steamed?"]
    passages = [PASSAGES["bees"][0], PASSAGES["bees"][0], PASSAGES["tea"][0]]
    batch = [model.tokenize(questions), model.tokenize(passages)]
    mnrl = build_loss(model, TrainConfig(loss="mnrl"), [64]).loss
    assert gist(batch, None).item() < mnrl(batch, None).item()
    gist(batch, None).backward()
    assert all(p.grad is None for p in guide.parameters())


def test_loss_names_are_the_registry_s(monkeypatch):
    """TrainConfig.loss, the CLI's --loss choices and the presets' losses are names in LOSSES."""
    import typing

    from helpers.training import __main__ as training

    assert typing.get_args(typing.get_type_hints(TrainConfig)["loss"]) == tuple(LOSSES)
    monkeypatch.setattr(training, "finetune", lambda *a, **k: pytest.fail("an unknown loss reached finetune"))
    with pytest.raises(SystemExit):
        training.main(["--pairs", "p", "--output", "o", "--loss", "no_such_loss"])
    with pytest.raises(ValueError, match="choose 'mnrl' or 'cached_mnrl'"):
        build_loss(None, TrainConfig(loss="no_such_loss"), [64])
    fits = [fit for preset in PRESETS.values() for fit in (preset.t4, preset.a100)]
    assert fits and {fit.loss for fit in fits} <= set(LOSSES)


def test_bad_pairs_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="questions stage"):
        finetune(tmp_path / "missing", tmp_path / "model", model_id="fallback")


def test_static_model_is_fine_tuned_saved_and_reloaded(tmp_path, static_model_path):
    import torch
    from sentence_transformers import SentenceTransformer

    from helpers.core.models import is_static, load_embedding_model
    from helpers.core.presets import PRESETS

    pairs = make_pairs(tmp_path, questions_per_passage=1)
    # No merge: 4 validation questions on 2 passages do not tell the models apart, so it would keep the start.
    cfg = TrainConfig.from_profile("smoke", preset="static-distilled", hardware="cpu", batch_size=9,
                                   max_steps=4, warmup_ratio=0.0, logging_steps=1, eval_steps=4,
                                   merge_alphas=[])
    result = finetune(pairs, tmp_path / "model", model_id="static-distilled", config=cfg, progress=False)

    assert result.dims == [256, 128, 64] and result.loss_end < result.loss_start
    reloaded = load_embedding_model(str(tmp_path / "model"), device="cpu", quiet=True)
    tuned = reloaded.model
    assert is_static(tuned) and tuned.encode(["a question"]).shape == (1, 256)
    assert reloaded.preset.kind == "static"  # a folder gets the static settings if it holds a static model
    before = SentenceTransformer(str(static_model_path), device="cpu")[0].embedding.weight
    assert not torch.equal(before, tuned[0].embedding.weight)
    meta = json.loads((tmp_path / "model" / "training_config.json").read_text())
    assert meta["base_model"]["preset"] == "static-distilled"
    assert meta["config"]["lr"] == PRESETS["static-distilled"].lr


def test_distillation_makes_a_static_model_from_a_model_folder(tmp_path, tiny_model):
    from sentence_transformers import SentenceTransformer

    from helpers.core.models import is_static
    from helpers.core.static_models import distill_static

    # Only the tokens that start with "b" (and the special ones), so that distillation takes a moment.
    out = distill_static(tiny_model, tmp_path / "static", pca_dims=32, token_remove_pattern=r"[^b\[]")
    model = SentenceTransformer(str(out), device="cpu")
    assert is_static(model) and model.encode(["bees buzz"]).shape == (1, 32)
    assert model[0].num_embeddings < 5000
    assert not list(tmp_path.glob(".static.*"))  # no half-written folder left behind


def test_the_distilled_model_is_made_once(monkeypatch, static_model_path):
    from helpers.core import static_models

    monkeypatch.setattr(static_models, "distill_static", lambda *a, **k: pytest.fail("distilled twice"))
    assert static_models.distilled_static_path() == static_model_path


def test_training_cli_passes_rotation_hard_negatives_tsdae_and_the_merge_grid(monkeypatch, capsys):
    from helpers.training import __main__ as training

    seen = []

    class Result:
        def summary(self):
            return {"ok": True}

    def fake_finetune(pairs, output, *, config, **kwargs):
        seen.append(config)
        return Result()

    monkeypatch.setattr(training, "finetune", fake_finetune)
    training.main(["--pairs", "p", "--output", "o", "--model", "fallback", "--no-corpus-rotation",
                   "--hard-negatives", "2", "--merge-alphas", "", "--tsdae-steps", "5"])
    training.main(["--pairs", "p", "--output", "o", "--model", "fallback", "--merge-alphas", "0,0.5,1"])
    training.main(["--pairs", "p", "--output", "o", "--model", "fallback"])
    assert (seen[0].corpus_rotation, seen[0].hard_negatives, seen[0].merge_alphas) == (False, 2, [])
    assert seen[0].tsdae_steps == 5 and seen[2].tsdae_steps == 0
    assert seen[1].merge_alphas == [0.0, 0.5, 1.0]
    assert (seen[2].corpus_rotation, seen[2].hard_negatives, seen[2].merge_alphas) == (True, 0, [0.75])


def test_training_sees_no_chunk_of_a_held_out_document(tmp_path):
    from datasets import Dataset, DatasetDict

    from helpers.core.io import write_jsonl
    from helpers.questions.pairs import UNSEEN
    from helpers.training.data import retrieval_corpus

    keys = list(PASSAGES)
    rows = [{"id": k, "text": PASSAGES[k][0], "source": f"{k}.pdf"} for k in keys]
    write_jsonl(tmp_path / "chunks.jsonl", rows)
    pairs = DatasetDict({"train": Dataset.from_list(_rows(keys[:8], 1)),
                         UNSEEN: Dataset.from_list(_rows(keys[8:], 1))})
    corpus = retrieval_corpus(pairs, tmp_path / "chunks.jsonl", held_out=["tides.pdf", "bridge.pdf"])
    assert set(corpus) == {k for k in keys if k not in ("tides", "bridge")}
    without_chunks = retrieval_corpus(pairs)  # from the pairs: the unseen split's chunks are not in it
    assert set(without_chunks) == {chunk_id("doc.pdf", PASSAGES[k][0]) for k in keys[:8]}


def recipe_cells() -> str:
    """The code of notebook 03's section "The recipe, as code", up to ``trainer.train()``."""
    import nbformat

    notebook = nbformat.read(REPO_ROOT / "notebooks" / "03_finetuning_arctic_embed.ipynb", as_version=4)
    start = next(i for i, c in enumerate(notebook.cells) if c.source.startswith("## The recipe, as code"))
    code = []
    for cell in notebook.cells[start:]:
        if cell.cell_type == "code":
            code.append(cell.source)
            if "trainer.train()" in cell.source:
                return "\n".join(code)
    raise AssertionError("notebook 03 no longer trains the recipe by hand")


def test_notebook_03_trains_the_recipe_by_hand_with_the_objects_finetune_builds(tmp_path, tiny_model):
    """The recipe the learner runs is the one the kit runs: same loss classes, dims, sampler, prompt, learning
    rate, batch size, epochs, warmup and validation dims."""
    from datasets import load_from_disk

    from helpers.core.config import RunPaths
    from helpers.core.models import load_embedding_model
    from helpers.training.data import retrieval_corpus
    from helpers.training.recipe import recipe_summary
    from helpers.training.trainer import build_trainer

    pairs = load_from_disk(str(make_pairs(tmp_path)))
    base = load_embedding_model(str(tiny_model))
    cfg = tiny_config(max_steps=-1, epochs=1, eval_steps=None)
    scope = {"base": base, "pairs": pairs, "train_config": cfg, "matryoshka_dims": matryoshka_dims,
             "paths": RunPaths(tmp_path)}
    exec(compile(recipe_cells(), "notebook 03, the recipe", "exec"), scope)
    trainer = scope["trainer"]
    assert trainer.state.global_step > 0 and any("loss" in row for row in trainer.state.log_history)
    assert any("eval_dim_64_cosine_ndcg@10" in row for row in trainer.state.log_history)

    corpus = retrieval_corpus(pairs, tmp_path / "chunks.jsonl")
    kit, _ = build_trainer(base.model, cfg, matryoshka_dims(base.model), pairs, corpus, tmp_path / "kit",
                           progress=False)
    summary = recipe_summary(trainer)
    assert summary == recipe_summary(kit)
    assert summary["loss"] == "MatryoshkaLoss over MultipleNegativesRankingLoss"
    assert summary["matryoshka dims"] == "128, 64" == summary["validation dims"]
    assert summary["batch sampler"] == "no_duplicates"
    assert summary["query prompt"] == repr(ARCTIC_QUERY_PROMPT)


def test_the_recorded_start_and_end_loss_are_quarter_means_not_one_noisy_batch():
    losses = [4.0, 3.3, 5.5, 4.7, 6.3, 3.1, 4.8, 2.4, 5.5, 3.4, 4.6, 4.5, 1.3, 3.5, 7.6]  # a 15-step run
    start, end = edge_means(losses)
    assert start == pytest.approx((4.0 + 3.3 + 5.5) / 3) and end == pytest.approx((1.3 + 3.5 + 7.6) / 3)
    assert edge_means([2.0]) == (2.0, 2.0) and edge_means([]) == (None, None)



def test_deletion_noise_is_seeded_and_keeps_a_word():
    import random

    from helpers.training.adaptation import delete_words

    text = " ".join(f"w{i}" for i in range(1000))
    damaged = delete_words(text, random.Random(0))
    assert damaged == delete_words(text, random.Random(0)) != delete_words(text, random.Random(1))
    assert 0.35 < len(damaged.split()) / 1000 < 0.45 and set(damaged.split()) <= set(text.split())
    assert all(delete_words("one", random.Random(seed)) == "one" for seed in range(20))


def test_tsdae_trains_the_encoder_on_passages_alone_for_one_epoch_at_most(tiny_model, capfd, recwarn):
    import torch
    from sentence_transformers import SentenceTransformer

    from helpers.training.adaptation import adapt_to_corpus

    model = SentenceTransformer(str(tiny_model), device="cpu")
    before = model[0].auto_model.embeddings.word_embeddings.weight.detach().clone()
    passages = [text for text, _ in PASSAGES.values()]
    short = adapt_to_corpus(model, passages, steps=2, batch_size=4)
    assert (short["steps"], short["passages"]) == (2, 8) and short["loss_start"] > 0
    assert not torch.equal(before, model[0].auto_model.embeddings.word_embeddings.weight)
    assert adapt_to_corpus(model, passages, steps=50, batch_size=4)["steps"] == -(-len(passages) // 4)
    assert "Computing widget examples" not in capfd.readouterr().err  # no library bar with progress off
    assert not [w for w in recwarn if "pin_memory" in str(w.message)]  # nothing to pin memory for on a CPU


def test_finetune_runs_tsdae_on_the_chunks_before_the_rotation_is_fitted(tmp_path, tiny_model, monkeypatch):
    from helpers.training import trainer

    order = []
    adapt, rotate = trainer.adapt_to_corpus, trainer.rotate_to_corpus

    def adapting(model, passages, steps, **kwargs):
        order.append(("tsdae", len(passages), steps))
        return adapt(model, passages, steps, **kwargs)

    def rotating(model, passages, batch_size, store):
        order.append(("rotation", len(passages), store))
        return rotate(model, passages, batch_size, store)

    monkeypatch.setattr(trainer, "adapt_to_corpus", adapting)
    monkeypatch.setattr(trainer, "rotate_to_corpus", rotating)
    cfg = TrainConfig(batch_size=4, max_steps=1, tsdae_steps=2, merge_alphas=[], evals_per_run=0)
    finetune(make_pairs(tmp_path), tmp_path / "model", model_id=str(tiny_model), config=cfg, progress=False)
    passages = len(PASSAGES)
    assert order == [("tsdae", passages, 2), ("rotation", passages, None)]  # no vectors of the base reused
    saved = json.loads((tmp_path / "model" / "training_config.json").read_text())
    assert saved["config"]["tsdae_steps"] == 2
