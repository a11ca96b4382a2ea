"""Stage 5, notebook 05_rag_chain_and_ragas: the RAG chain with either retriever, scored with RAGAS."""

from helpers.rag.scoring import load_systems, rag_evaluate_run, run

__all__ = ["load_systems", "rag_evaluate_run", "run"]
