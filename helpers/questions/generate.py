"""Stage 02: question/passage pairs from chunks, by an LLM or offline, validated, split and saved.

- ``generate``: an LLM through any OpenAI-compatible endpoint (concurrent, rate-limited, retried, cached).
- ``generate_offline``: no LLM needed; headings, inverse-cloze sentences and keyphrases become queries.
- ``build_pairs``: the stage entry point (chunks.jsonl -> runs/<run>/pairs/ + report.json).

Every pair is ``{"id", "anchor", "positive", "chunk_id", "generator"}``; ``anchor`` is the bare question
(no query prompt), ``positive`` the chunk text, ``generator`` says where the question came from.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from helpers.core import config
from helpers.core.io import save_figure
from helpers.core.llm import (
    ATTEMPTS_ENV,
    TIMEOUT_ENV,
    JsonCache,
    LLMError,
    LLMSettings,
    RateLimiter,
    RequestFailed,
    cache_key,
    chat,
    cost_usd,
    estimate_tokens,
    llm_settings,
    make_client,
    run_sync,
)
from helpers.core.schema import Chunk
from helpers.core.settings import RunSettings
from helpers.questions.offline import generate_offline
from helpers.questions.pairs import (
    GenerationResult,
    QuestionEncoder,
    SplitBudget,
    check_leakage,
    generator_counts,
    make_pair,
    normalize,
    rejection_summary,
    save_pairs,
    split_pairs,
    validate,
)

logger = logging.getLogger(__name__)

# The prompt, in one place. Change PROMPT_VERSION with it: cached answers are keyed by the version.
PROMPT_VERSION = "questions-v1"
SYSTEM_PROMPT = "You write realistic search questions for training a retrieval model. Reply with JSON only."
QUESTION_PROMPT = """\
Write {n} different questions that someone searching a collection of documents would ask, each of which \
the passage below answers.

Rules:
- Each question stands on its own: never mention "the passage", "the text", "this document" or \
"according to".
- Ask about the content (facts, rules, numbers, reasons, steps), in your own words; do not copy long \
phrases from the passage.
- No numbering, no labels, no answers: just the questions.

Reply with exactly this JSON shape: {{"questions": ["first question?", "second question?"]}}

Passage from "{source}"{section}:
\"\"\"
{text}
\"\"\""""
EXPECTED_COMPLETION_TOKENS_PER_QUESTION = 25  # for the estimate before a run


# ---------------------------------------------------------------------------------------------- LLM


def build_messages(chunk: Chunk, n: int) -> list[dict]:
    section = f', section "{chunk.heading}"' if chunk.heading else ""
    prompt = QUESTION_PROMPT.format(n=n, source=chunk.source, section=section, text=chunk.text)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]


def parse_questions(content: str) -> list[str]:
    """Strictly parse ``{"questions": [str, ...]}``; raise ValueError with the reason otherwise."""
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        raise ValueError("malformed_output: not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise ValueError('malformed_output: no "questions" list')
    if not all(isinstance(q, str) for q in data["questions"]):
        raise ValueError("malformed_output: a question is not a string")
    return [q.strip() for q in data["questions"]]


def estimate(chunks: list[Chunk], n: int, settings: LLMSettings, cache: JsonCache) -> dict:
    """Requests, tokens (characters / 4) and cost of the chunks not in the cache yet."""
    todo = [c for c in chunks if cache.get(_key(settings, c, n)) is None]
    prompt = sum(estimate_tokens(m["content"]) for c in todo for m in build_messages(c, n))
    completion = len(todo) * n * EXPECTED_COMPLETION_TOKENS_PER_QUESTION
    return {"requests": len(todo), "cached": len(chunks) - len(todo), "prompt_tokens": prompt,
            "completion_tokens": completion, "cost_usd": cost_usd(settings.model, prompt, completion),
            "method": "characters / 4"}


def generate(chunks: list[Chunk], n_per_chunk: int, settings: LLMSettings | None = None,
             cache_dir: Path | str | None = None, concurrency: int = 8, rpm: float | None = None,
             progress: bool = True) -> GenerationResult:
    """Ask the LLM for ``n_per_chunk`` questions per chunk; also callable from Jupyter.

    Answers are cached per (model, prompt version, chunk, n) in ``cache_dir`` (None: the shared cache of the
    runs folder as it is when called), so a rerun or a restarted run makes no request twice. A chunk whose
    request keeps failing, or whose answer does not parse, is recorded in ``failures`` with its reason.
    """
    settings = settings or llm_settings()
    if settings is None:
        raise ValueError("No LLM configured: set OPENAI_API_KEY (or KIT_LLM_BASE_URL), or use "
                         "generate_offline().")
    if concurrency < 1 or n_per_chunk < 1:
        raise ValueError("concurrency and n_per_chunk must be at least 1")
    cache = JsonCache(cache_dir or config.llm_cache_dir())
    plan = estimate(chunks, n_per_chunk, settings, cache) | {"concurrency": concurrency}
    logger.info(_describe_estimate(plan, settings))
    result = run_sync(_generate_async(chunks, n_per_chunk, settings, cache, concurrency, rpm, progress))
    result.usage["estimate"] = plan
    logger.info(_describe_usage(result.usage))
    return result


async def _generate_async(chunks: list[Chunk], n: int, settings: LLMSettings, cache: JsonCache,
                          concurrency: int, rpm: float | None, progress: bool) -> GenerationResult:
    from tqdm.auto import tqdm

    generator = f"llm:{settings.model}"
    result = GenerationResult([], generator, requested=n * len(chunks))
    counts: Counter[str] = Counter()
    questions: dict[str, list[str]] = {}
    semaphore, limiter = asyncio.Semaphore(concurrency), RateLimiter(rpm)
    client = make_client(settings)
    bar = tqdm(total=len(chunks), desc="Generating questions", unit="chunk",
               disable=None if progress else True)  # None: no bar when the output is not a terminal
    waits = Waits(bar, settings.timeout_s, failures_to_stop=2 * concurrency)

    def fail(chunk: Chunk, reason: str, example: str = "") -> None:
        result.failures.append({"chunk_id": chunk.id, "reason": reason, "example": example[:200]})
        waits.failed(reason)

    async def ask(chunk: Chunk, key: str) -> dict | None:
        try:
            async with semaphore:
                if waits.stopped:
                    return fail(chunk, waits.stopped)
                with waits.request():
                    content, usage = await chat(
                        client, settings, build_messages(chunk, n), json_mode=True, limiter=limiter,
                        on_attempt=lambda: counts.update(["requests"]), on_retry=waits.retrying)
        except RequestFailed as exc:
            return fail(chunk, exc.reason)
        counts.update(usage)
        try:
            parsed = parse_questions(content)
        except ValueError as exc:
            return fail(chunk, str(exc), content)
        waits.succeeded()
        entry = {"model": settings.model, "prompt_version": PROMPT_VERSION, "chunk_id": chunk.id, "n": n,
                 "questions": parsed[:n], "usage": usage}
        cache.put(key, entry)
        return entry

    async def one(chunk: Chunk) -> None:
        key = _key(settings, chunk, n)
        entry = cache.get(key)
        if entry is None:
            entry = await ask(chunk, key)
        else:
            counts["cached_chunks"] += 1
        bar.update()
        if entry is not None:
            questions[chunk.id] = entry["questions"]

    try:
        async with asyncio.TaskGroup() as group:
            for chunk in chunks:
                group.create_task(one(chunk))
    except* LLMError as errors:
        raise errors.exceptions[0] from None
    finally:
        bar.close()
        await client.close()
    result.pairs = [make_pair(q, c, generator) for c in chunks for q in questions.get(c.id, [])]
    tokens = {name: counts[name] for name in ("prompt_tokens", "completion_tokens")}
    result.usage = {"requests": counts["requests"], "cached_chunks": counts["cached_chunks"], **tokens,
                    "cost_usd": cost_usd(settings.model, *tokens.values())}
    return result


class Waits:
    """What the generation waits on, shown beside the progress bar (requests in flight, retries, failures),
    and the stop once ``failures_to_stop`` chunks failed in a row: the chunks not sent yet are then recorded
    as failed (a rerun retries them), so a dead or hanging endpoint costs a bounded time."""

    def __init__(self, bar, timeout_s: float, failures_to_stop: int):
        self.bar, self.timeout_s, self.failures_to_stop = bar, timeout_s, failures_to_stop
        self.in_flight = self.retries = self.n_failed = self.in_a_row = 0
        self.last = ""
        self.stopped: str | None = None

    @contextmanager
    def request(self) -> Iterator[None]:
        self.in_flight += 1
        self._show()
        try:
            yield
        finally:
            self.in_flight -= 1
            self._show()

    def retrying(self, reason: str) -> None:
        self.retries, self.last = self.retries + 1, reason
        self._show()

    def succeeded(self) -> None:
        self.in_a_row = 0

    def failed(self, reason: str) -> None:
        self.n_failed, self.in_a_row, self.last = self.n_failed + 1, self.in_a_row + 1, reason
        if self.in_a_row >= self.failures_to_stop and not self.stopped:
            self.stopped = f"not sent: the endpoint failed {self.in_a_row} chunks in a row (last: {reason})"
        self._show()

    def _show(self) -> None:
        status = {"waiting_on": f"{self.in_flight} requests (timeout {self.timeout_s:g} s)",
                  "retries": self.retries, "failed": self.n_failed}
        self.bar.set_postfix(status | ({"last_error": self.last} if self.last else {}), refresh=False)


def _key(settings: LLMSettings, chunk: Chunk, n: int) -> str:
    """Cache key: model, prompt version, chunk id, n, and a hash of the exact messages sent."""
    messages = hashlib.sha256(json.dumps(build_messages(chunk, n)).encode()).hexdigest()
    return cache_key(model=settings.model, prompt_version=PROMPT_VERSION, chunk=chunk.id, n=n,
                     messages=messages)


def _describe_estimate(plan: dict, settings: LLMSettings) -> str:
    cost = (f"~${plan['cost_usd']:.4f} at {settings.model} list prices" if plan["cost_usd"] is not None
            else f"no list price for {settings.model}")
    return (f"LLM: {settings.describe()}\nEstimate: {plan['requests']} requests ({plan['cached']} cached), "
            f"~{plan['prompt_tokens']:,} prompt + ~{plan['completion_tokens']:,} completion tokens "
            f"({plan['method']}), {cost}\nEach request: up to {settings.max_attempts} attempts of at most "
            f"{settings.timeout_s:g} s (at most {settings.worst_case_s():.0f} s; {TIMEOUT_ENV} / "
            f"--llm-timeout, {ATTEMPTS_ENV} / --llm-attempts); generation stops after "
            f"{2 * plan['concurrency']} chunks fail in a row")


def _describe_usage(usage: dict) -> str:
    cost = f"${usage['cost_usd']:.4f}" if usage["cost_usd"] is not None else "cost unknown"
    return (f"Used: {usage['requests']} requests ({usage['cached_chunks']} chunks from the cache), "
            f"{usage['prompt_tokens']:,} prompt + {usage['completion_tokens']:,} completion tokens "
            f"(reported by the API), {cost}")


# ------------------------------------------------------------------------------------------ the stage


def build_pairs(chunks_path: Path | str, out_dir: Path | str, profile: config.Profile | str | None = None,
                generator: str = "auto", cache_dir: Path | str | None = None, model=None, seed: int = 42,
                settings: LLMSettings | None = None, progress: bool = True, split: str = "chunks") -> dict:
    """Chunks -> questions (LLM or offline) -> validated pairs -> split by chunk -> ``out_dir``.

    Offline, every chunk gets questions; the LLM is asked about the profile's ``max_chunks``. The splits
    then take whole chunks up to the profile's budget (training pairs, validation and test questions).

    ``generator``: "auto" (the LLM when one is configured, else offline), "llm" or "offline".
    ``split``: "chunks", or "documents" to also keep whole documents out of training
    (``documents_to_hold_out``): their questions make the ``unseen`` split, which shows how the model does
    on documents added after training.
    ``model``: an embedding model (id, ``LoadedModel`` or SentenceTransformer) for near-duplicate
    detection and the leakage check; without one, duplicates are found by normalized text only.
    Returns the report, also written to ``out_dir/report.json``.
    """
    from helpers.chunking.chunkers import load_chunks

    profile = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    chunks = load_chunks(chunks_path)
    if split not in ("chunks", "documents"):
        raise ValueError(f"split must be 'chunks' or 'documents', got {split!r}")
    unseen_docs = documents_to_hold_out(chunks, seed) if split == "documents" else []
    n = profile.questions_per_chunk
    mode, settings = resolve_generator(generator, settings)
    if mode == "llm":  # LLM calls cost: at most max_chunks chunks, plus some only the test split uses
        chosen = select_chunks(chunks, profile.max_chunks, seed)
        held_out = held_out_test_chunks(chunks, chosen, profile.test_questions, n, seed)
        result = generate(chosen + held_out, n, settings, cache_dir, progress=progress)
    else:  # offline questions are free: every chunk gets them, the split budget caps what training uses
        chosen, held_out = list(chunks), []
        result = generate_offline(chunks, n, seed=seed, progress=progress)
    embedder = _embedding_model(model)
    encoder = QuestionEncoder(embedder) if embedder is not None else None  # shared: one encoding each
    kept, rejected = validate(result.pairs, encoder)
    texts = {c.id: c.text for c in chunks}
    unseen = {c.id for c in chunks if c.source in unseen_docs}
    dataset = split_with_causes(kept, result.failures, seed, {c.id for c in held_out}, texts,
                                split_budget(profile), unseen)
    used = sum(len(ds) for ds in dataset.values())
    report = {
        "generator": result.generator, "generators": generator_counts(kept),
        "prompt_version": PROMPT_VERSION if mode == "llm" else None,
        "llm": settings.public() if mode == "llm" else None,
        "profile": profile.name, "seed": seed, "questions_per_chunk": n,
        "split": split, "held_out_documents": unseen_docs,
        "chunks": {"total": len(chunks), "used": len(chosen), "held_out_for_test": len(held_out)},
        "counts": {"requested": result.requested, "generated": len(result.pairs), "kept": len(kept),
                   "rejected": len(rejected), "failed_chunks": len(result.failures),
                   "beyond_budget": len(kept) - used},
        "budget": asdict(split_budget(profile)),
        "rejections": rejection_summary(rejected), "failures": failure_summary(result.failures),
        "failed_chunk_ids": [f["chunk_id"] for f in result.failures],
        "pending": pending_message(result.failures, len(chosen) + len(held_out)),
        "deduplication": _dedup_method(embedder),
        "splits": {name: len(ds) for name, ds in dataset.items()},
        "split_chunks": {name: len(set(ds["chunk_id"])) for name, ds in dataset.items()},
        "leakage": check_leakage(dataset, encoder, chunk_texts=texts),
        "usage": result.usage or None,
    }
    save_pairs(dataset, out_dir, report)
    logger.info(describe_report(report) + f"\n-> {config.shown(out_dir)}")
    return report


def split_budget(profile: config.Profile) -> SplitBudget:
    """Questions per split the profile allows: training pairs, validation questions, test questions."""
    return SplitBudget(profile.max_train_pairs, profile.validation_questions, profile.test_questions)


def documents_to_hold_out(chunks: list[Chunk], seed: int = 42, share: float = 0.2) -> list[str]:
    """A seeded ``share`` of the documents (at least one), kept out of training for a split by document."""
    documents = sorted({c.source for c in chunks})
    if len(documents) < 3:
        raise ValueError(f"A split by document needs at least 3 documents (one to hold out, two to train "
                         f"and validate on); these chunks come from {len(documents)}: "
                         f"{', '.join(documents) or 'none'}. Add documents, or split by chunk.")
    return sorted(random.Random(seed).sample(documents, max(1, round(share * len(documents)))))


def split_with_causes(kept: list[dict], failures: list[dict], seed: int, test_only: set[str],
                      chunk_texts: dict[str, str], budget: SplitBudget, unseen: set[str] = frozenset()):
    """``split_pairs``; when too few pairs are left, the error leads with the LLM's failures and the fix."""
    try:
        return split_pairs(kept, seed=seed, test_only=test_only, chunk_texts=chunk_texts, budget=budget,
                           unseen=unseen)
    except ValueError as exc:
        if not failures:
            raise
        raise LLMError(
            f"The LLM gave no usable questions for {len(failures)} chunks ({failure_causes(failures)}), so "
            f"too few pairs are left: {exc} Fix the endpoint (see the causes; {TIMEOUT_ENV} and "
            f"{ATTEMPTS_ENV} set its timeout and retries) and run the same command again: only the failed "
            "chunks are asked again. Or use --generator offline.") from None


def held_out_test_chunks(chunks: list[Chunk], chosen: list[Chunk], test_questions: int | None,
                         questions_per_chunk: int, seed: int = 42, test_ratio: float = 0.1) -> list[Chunk]:
    """Chunks left out of ``chosen`` that only the test split uses, enough for about ``test_questions``
    (with the test share of ``chosen``); a seeded sample, none when there are no spare chunks."""
    if not test_questions:
        return []
    ids, texts = {c.id for c in chosen}, {normalize(c.text) for c in chosen}
    spare = [c for c in chunks if c.id not in ids and normalize(c.text) not in texts]
    wanted = math.ceil(test_questions / max(1, questions_per_chunk)) - round(len(chosen) * test_ratio)
    if wanted <= 0 or not spare:
        return []
    picked = sorted(random.Random(seed).sample(range(len(spare)), min(wanted, len(spare))))
    return [spare[i] for i in picked]


def select_chunks(chunks: list[Chunk], max_chunks: int | None, seed: int = 42) -> list[Chunk]:
    """At most ``max_chunks`` chunks, a seeded sample spread over all documents, in their original order."""
    if max_chunks is None or len(chunks) <= max_chunks:
        return list(chunks)
    chosen = sorted(random.Random(seed).sample(range(len(chunks)), max_chunks))
    return [chunks[i] for i in chosen]


def resolve_generator(generator: str, settings: LLMSettings | None = None) -> tuple[str, LLMSettings | None]:
    """("llm", settings) or ("offline", None) for ``generator`` = "auto" | "llm" | "offline"."""
    if generator not in {"auto", "llm", "offline"}:
        raise ValueError(f"generator must be 'auto', 'llm' or 'offline', got {generator!r}")
    settings = settings or (llm_settings() if generator != "offline" else None)
    if generator == "llm" and settings is None:
        raise ValueError("generator='llm' but no LLM is configured: set OPENAI_API_KEY or KIT_LLM_BASE_URL.")
    return ("llm", settings) if settings is not None and generator != "offline" else ("offline", None)


def failure_causes(failures: list[dict]) -> str:
    """``server_error (500) after 6 attempts: 12, malformed_output: not JSON: 3`` (most frequent first)."""
    return ", ".join(f"{reason}: {count}" for reason, count in Counter(f["reason"] for f in failures)
                     .most_common())


def pending_message(failures: list[dict], n_chunks: int) -> str | None:
    """What a rerun will retry (None when every chunk got its questions)."""
    if not failures:
        return None
    return (f"{len(failures)} of {n_chunks} chunks got no questions ({failure_causes(failures)}); a rerun "
            "retries exactly those, the answered chunks come from the cache")


def failure_summary(failures: list[dict], examples: int = 3) -> dict:
    """``{reason: {"count": n, "examples": [...]}}`` for chunks whose request or answer failed."""
    reasons = Counter(f["reason"] for f in failures)
    return {reason: {"count": count, "examples": [f for f in failures if f["reason"] == reason][:examples]}
            for reason, count in reasons.most_common()}


def describe_report(report: dict) -> str:
    """Three lines: counts, rejections by reason, split sizes and the leakage check."""
    counts = report["counts"]
    reasons = ", ".join(f"{r} {v['count']}" for r, v in report["rejections"].items()) or "none"
    splits = " / ".join(f"{name} {size}" for name, size in report["splits"].items())
    return (f"{report['generator']}: kept {counts['kept']} of {counts['generated']} questions "
            f"({counts['requested']} requested, {counts['failed_chunks']} chunks failed)\n"
            f"rejected: {reasons}\nsplits: {splits}{_held_out(report)}; leakage check: "
            f"{'passed' if report['leakage']['ok'] else 'FAILED'}")


def _held_out(report: dict) -> str:
    held, spare = report["chunks"].get("held_out_for_test", 0), report["counts"].get("beyond_budget", 0)
    docs = report.get("held_out_documents") or []
    notes = ([f"test includes questions on {held} chunks held out from training"] if held else []) + (
        [f"unseen: questions on {n_documents(len(docs))} kept out of training ({', '.join(docs)})"]
        if docs else []) + ([f"{spare} questions beyond the profile's budget unused"] if spare else [])
    return f" ({'; '.join(notes)})" if notes else ""


def n_documents(n: int) -> str:
    """'1 document', '3 documents'."""
    return f"{n} document{'' if n == 1 else 's'}"


def _embedding_model(model):
    if isinstance(model, str):
        from helpers.core.models import load_embedding_model

        return load_embedding_model(model)
    return model


def _dedup_method(model) -> str:
    if model is None:
        return "normalized text"
    name = getattr(model, "loaded", None) or type(model).__name__
    return f"normalized text + embeddings ({name}, cosine >= 0.95)"


def plot_validation(report: dict, path: Path | str | None = None):
    """Horizontal bars: questions kept, and rejected per reason (most frequent first)."""
    import matplotlib.pyplot as plt

    labels = ["kept", *report["rejections"]]
    counts = [report["counts"]["kept"], *(v["count"] for v in report["rejections"].values())]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(labels) + 1))
    ax.barh(labels[::-1], counts[::-1], color=["tab:red"] * (len(labels) - 1) + ["tab:green"])
    for y, count in enumerate(counts[::-1]):
        ax.text(count, y, f" {count}", va="center", fontsize=9)
    ax.set_xlabel("questions")
    ax.set_title(f"{report['counts']['generated']} questions from {report['generator']}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def run(paths: config.RunPaths, settings: RunSettings) -> dict:
    """The pipeline's questions stage: ``paths.chunks`` into ``paths.pairs``. The offline MiniLM catches
    near-duplicate questions, whatever model is fine-tuned."""
    return build_pairs(paths.chunks, paths.pairs, profile=settings.profile, generator=settings.generator,
                       cache_dir=settings.llm_cache, model="fallback", split=settings.split,
                       settings=settings.llm)
