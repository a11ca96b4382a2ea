"""The names eval.json uses: the systems compared, the dimension key of BM25 and the headline metric."""

BM25, BASE, FINETUNED = "bm25", "base", "fine-tuned"
BASE_ROTATED = "base, rotated"
STATIC, STATIC_FINETUNED = "static", "static fine-tuned"
HEADLINE = "ndcg@10"
GOLD_UNSEEN = "gold, unseen documents"  # gold questions answered only by documents held out from training
NO_DIM = "full"  # the dimension key of BM25, which has no dimensions
UNSEEN_LABEL = "documents it never saw"


def query_set_label(name: str) -> str:
    """How sentences name a query set: "gold questions", "test questions on documents it never saw"."""
    return {"unseen": f"test questions on {UNSEEN_LABEL}",
            GOLD_UNSEEN: f"gold questions on {UNSEEN_LABEL}"}.get(name, f"{name} questions")
