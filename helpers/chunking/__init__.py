"""Stage 1, notebook 01_chunking_pdfs: PDFs to clean text to chunks."""

from helpers.chunking.chunkers import build_chunks, load_chunks, run

__all__ = ["build_chunks", "load_chunks", "run"]
