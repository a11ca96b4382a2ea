"""Stage 2, notebook 02_generating_question_pairs: a question per chunk (LLM or offline), validated pairs."""

from helpers.questions.generate import build_pairs, run

__all__ = ["build_pairs", "run"]
