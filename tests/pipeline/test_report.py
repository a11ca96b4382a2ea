import base64

import matplotlib.pyplot as plt

from helpers.core import config
from helpers.pipeline.report import Section, key_value_table, write_report


def test_report_writes_markdown_and_self_contained_html(tmp_path):
    paths = config.run_paths("r", tmp_path)
    paths.plots.mkdir()
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    fig.savefig(paths.plots / "ndcg.png")
    plt.close(fig)
    sections = [Section("Retrieval", "Fine-tuned <beats> base.", [key_value_table({"ndcg@10": 0.81234})],
                        [paths.plots / "ndcg.png"])]
    md, html = write_report(paths, "Run report", sections)
    text = md.read_text()
    assert "## Retrieval" in text and "| ndcg@10 | 0.812 |" in text and "](plots/ndcg.png)" in text
    page = html.read_text()
    embedded = base64.b64encode((paths.plots / "ndcg.png").read_bytes()).decode()
    assert f"data:image/png;base64,{embedded}" in page
    assert "Fine-tuned &lt;beats&gt; base." in page and "<td>0.812</td>" in page


def test_the_run_report_opens_with_the_verdict_in_plain_words_and_links_its_files(recorded_run):
    import re

    from helpers.pipeline.run_report import write_run_report

    md, html = (p.read_text() for p in write_run_report(recorded_run))

    sections = re.findall(r"^## (.+)$", md, re.M)
    assert sections[0] == "Verdict: did fine-tuning help?" and sections[1] == "Cost"
    verdict = md.split("\n## ")[1]
    assert "Fine-tuned vs base on the gold questions" in verdict and "would go unseen (80% power)" in verdict
    header = ("| dims | base | fine-tuned | difference | 95% interval | rotation | training | detectable "
              "| verdict |")
    assert header in verdict
    assert "per million chunks" in md.split("\n## ")[2] and "| 128 | 512 MB | 128 MB | 16 MB |" in md
    order = [html.index(s) for s in ("<section id='verdict'>", "<section id='cost'>", "<h2>Fine-tuning")]
    assert order == sorted(order)
    for raw_key in ("is_fallback", "best_metric_name", "resumed_from", "cached", "n_train", "over_limit"):
        assert raw_key not in md, raw_key
    assert "<a href='eval.json'>eval.json</a>" in html and "[model/](model/)" in md
    assert not re.search(r"\d\.\d{5,}", md), "numbers are rounded for reading"


def test_the_training_section_says_which_merge_was_kept_and_what_the_offline_proxy_found(recorded_run):
    from helpers.core.io import read_json, write_json
    from helpers.pipeline.run_report import write_run_report

    record = recorded_run.stage_record("train")
    train = read_json(record)
    train["summary"]["merge"] = {
        "alpha": 0.5, "grid": [0.0, 0.25, 0.5, 0.75, 1.0], "metric": "dim_384_cosine_ndcg@10",
        "scores": {"base": 0.61, "fine_tuned": 0.70, "merged": 0.72},
        "foreign": {"collection": "the bundled sample corpus's gold questions", "skipped": False,
                    "questions": 150, "chunks": 120, "metric": "ndcg@10 at 384 dims",
                    "scores": {"base": 0.64, "fine_tuned": 0.60, "merged": 0.635}}}
    write_json(record, train)
    training = write_run_report(recorded_run)[0].read_text().split("\n## Fine-tuning")[1].split("\n## ")[0]
    assert "α = 0.5; the saved model keeps 50% of the starting weights" in training
    assert "base 0.610, fine-tuned 0.700, merged 0.720" in training
    assert "Offline retention proxy" in training and "fine-tuned 0.600, saved model 0.635" in training
    assert "no loss on text it was not trained on" in training


def test_a_verdict_on_synthetic_questions_alone_says_so_and_how_to_do_better(recorded_run):
    from helpers.core.io import read_json, write_json
    from helpers.pipeline.run_report import write_run_report

    report = read_json(recorded_run.eval)
    report["query_sets"].pop("gold")
    report["skipped_query_sets"] = {"gold": "the gold set was written for another corpus."}
    write_json(recorded_run.eval, report)
    bm25 = report["query_sets"]["test"]["metrics"]["bm25"]["full"]["ndcg@10"]["mean"]

    verdict = write_run_report(recorded_run)[0].read_text().split("\n## ")[1]
    first = verdict.split("\n\n")[1]  # the headline sentence: no "helped" on the kit's own questions
    assert first.startswith("Fine-tuned vs base on the test questions (") and "all synthetic" in first
    assert "helped" not in first and "; higher on these questions at " in first
    assert f"BM25 scores {bm25:.3f}" in first and "people ask is unknown" in first
    assert "`python -m helpers gold draft --run smoke`" in verdict


def test_failed_rag_answers_are_counted_by_cause_in_the_report(recorded_run):
    from helpers.core.io import read_json, write_json
    from helpers.pipeline.run_report import write_run_report

    result = read_json(recorded_run.rag_eval)
    result["answers"] = {"asked": 114, "answered": 0, "failed": 114, "all_failed": True,
                         "causes": {"timeout (> 2 s) after 2 attempts": 8,
                                    "not sent: the LLM failed 8 answers in a row": 106},
                         "pending": "114 of 114 RAG answers failed (...)"}
    write_json(recorded_run.rag_eval, result)
    rag = write_run_report(recorded_run)[0].read_text().split("\n## RAG chain")[1]
    assert "114 of 114 answers failed and are left out of every score below. No answer came back" in rag
    assert "| timeout (> 2 s) after 2 attempts | 8 |" in rag and "| not sent: the LLM failed" in rag


def test_the_cost_of_a_resumed_training_adds_up_the_runs_that_trained(recorded_run):
    from helpers.core.io import read_json, write_json
    from helpers.pipeline.run_report import write_run_report

    record = recorded_run.stage_record("train")
    train = read_json(record)
    train["seconds"] = 10.7  # the resumed run's stage alone
    train["summary"] |= {"resumed_from": "/runs/smoke/checkpoints/checkpoint-8", "train_seconds": 186.7}
    write_json(record, train)
    cost = write_run_report(recorded_run)[0].read_text().split("\n## Cost")[1].split("\n## ")[0]
    assert ("Training took 3 min 07 s on this machine, added up over the runs it took (resumed from "
            "checkpoint-8 after an interruption; the last run's stage, the static model included, took "
            "11 s)") in cost


def test_the_rag_table_reads_as_words_and_names_each_judge_once(recorded_run):
    from helpers.pipeline.run_report import write_run_report

    md, html = (p.read_text() for p in write_run_report(recorded_run))
    rag = md.split("\n## RAG chain")[1]
    assert "| query set | metric | base | fine-tuned | scored | failed |" in rag
    assert "| gold | context recall (no LLM) |" in rag and "non_llm" not in rag
    assert rag.count("rapidfuzz Levenshtein similarity") == 1  # in the prose, not on every row


def test_paired_differences_are_signed_and_p_values_read_alike(recorded_run):
    import re

    from helpers.pipeline.run_report import write_run_report

    md = write_run_report(recorded_run)[0].read_text()
    paired = md.split("**Paired differences")[1].split("\n\n**")[0]
    rows = [line.split(" | ") for line in paired.splitlines() if line.startswith("| gold")]
    assert rows and all(re.fullmatch(r"[+-]\d\.\d{3}|0\.000", row[3]) for row in rows)
    assert all(re.fullmatch(r"< 0\.001|\d\.\d{3}", row[5]) for row in rows)


def test_notebook_04_the_report_and_the_terminal_give_one_verdict_gold_first(recorded_run, capsys):
    import json

    from helpers.cli import _print_verdicts
    from helpers.core.io import read_json
    from helpers.evaluation.verdicts import verdict_sentences
    from helpers.pipeline.run_report import write_run_report

    report = read_json(recorded_run.eval)
    sentences = verdict_sentences(report)
    assert len(sentences) == 2 and sentences[0].startswith("Fine-tuned vs base on the gold questions")
    md = write_run_report(recorded_run)[0].read_text()
    verdict = md.split("\n## ")[1]
    assert verdict.index(sentences[0]) < verdict.index(sentences[1])
    _print_verdicts(report, recorded_run.root.name)
    printed = capsys.readouterr().out
    assert printed.index(sentences[0]) < printed.index(sentences[1])
    notebook = config.REPO_ROOT / "notebooks" / "04_evaluating_retrieval.ipynb"
    cells = json.loads(notebook.read_text())["cells"]
    assert any("print(\"\\n\\n\".join(verdict_sentences(report)))" in "".join(c["source"]) for c in cells)


def test_a_lexical_baseline_that_beats_the_model_is_said_and_explained(recorded_run):
    from helpers.core.io import read_json
    from helpers.evaluation.verdicts import verdict_sentences

    report = read_json(recorded_run.eval)
    gold, synthetic = verdict_sentences(report)
    test = report["query_sets"]["test"]
    bm25 = test["metrics"]["bm25"]["full"]["ndcg@10"]["mean"]
    training = next(t for t in test["paired_tests"] if t["a"] == "base, rotated" and t["dim"] == "384")
    assert "BM25" not in gold, "on people's questions every model beats BM25 in the recorded run"
    assert f"BM25, plain word matching, scores {bm25:.3f} here" in synthetic
    assert "share their words" in synthetic
    added = f"adds {training['mean_diff']:+.3f} at 384 dims"
    assert f"Training alone (vs the base rotated onto these chunks) {added}" in synthetic
