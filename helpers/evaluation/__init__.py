"""Stage 4, notebook 04_evaluating_retrieval: BM25, the base and the fine-tuned model on the same queries."""

from helpers.evaluation.stage import evaluate_run, run

__all__ = ["evaluate_run", "run"]
