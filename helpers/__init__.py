"""Helpers for the course: PDFs -> chunks -> question pairs -> fine-tuned embeddings -> evaluation -> RAG."""

__version__ = "0.1.0"
