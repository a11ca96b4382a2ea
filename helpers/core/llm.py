"""One OpenAI-compatible LLM client for the kit: settings from the environment, retries, rate limit, cache.

Works with OpenAI, or a local Ollama / vLLM server (``KIT_LLM_BASE_URL``, no key needed). The API key is
read from the environment, used for requests and nothing else: it is never printed, logged, written or
shown in a ``repr``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from helpers.core.io import read_json, write_json

DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_BASE_URL = "https://api.openai.com/v1"
# USD per million (input, output) tokens, list prices of 2025; a model not listed has no cost estimate.
PRICES_PER_MILLION = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
}
CHARS_PER_TOKEN = 4  # rough estimate; tiktoken downloads its encodings, so it is never used offline
TIMEOUT_ENV, ATTEMPTS_ENV = "KIT_LLM_TIMEOUT_S", "KIT_LLM_MAX_ATTEMPTS"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_ATTEMPTS = 4  # 1 try + 3 retries
BACKOFF_BASE_S, BACKOFF_CAP_S = 0.5, 30.0


class LLMError(RuntimeError):
    """A failure that retrying cannot fix (bad key, unknown model, bad request)."""


class RequestFailed(Exception):
    """A request that failed after every retry; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LLMSettings:
    """Where to send chat requests. ``api_key`` is excluded from ``repr`` and from ``describe()``."""

    model: str = DEFAULT_MODEL
    base_url: str = OPENAI_BASE_URL
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S  # per attempt
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # retries on 429, 5xx, timeouts and connection errors

    def worst_case_s(self) -> float:
        """The longest one request can take: every attempt times out, with the longest backoffs between."""
        backoffs = sum(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (a - 1)) for a in range(1, self.max_attempts))
        return self.max_attempts * self.timeout_s + backoffs

    def describe(self) -> str:
        """E.g. ``gpt-4o-mini at https://api.openai.com/v1 (key set)``."""
        return f"{self.model} at {public_url(self.base_url)} ({'key set' if self.api_key else 'no key'})"

    def public(self) -> dict:
        """What may be written to an artifact."""
        return {"model": self.model, "base_url": public_url(self.base_url)}


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment (where a secret could hide)."""
    parts = urlparse(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunparse((parts.scheme, netloc, parts.path, "", "", ""))


def llm_settings() -> LLMSettings | None:
    """Settings from ``OPENAI_API_KEY``, ``KIT_LLM_BASE_URL`` or ``OPENAI_BASE_URL``, ``KIT_LLM_MODEL``,
    ``KIT_LLM_TIMEOUT_S`` (seconds per attempt) and ``KIT_LLM_MAX_ATTEMPTS``.

    None when no LLM is configured (no key and no base URL).
    """
    key = os.environ.get("OPENAI_API_KEY", "").strip() or None
    base_url = (os.environ.get("KIT_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL") or "").strip()
    if not key and not base_url:
        return None
    model = os.environ.get("KIT_LLM_MODEL", "").strip() or DEFAULT_MODEL
    return LLMSettings(model=model, base_url=base_url or OPENAI_BASE_URL, api_key=key,
                       timeout_s=_env_number(TIMEOUT_ENV, DEFAULT_TIMEOUT_S, float),
                       max_attempts=_env_number(ATTEMPTS_ENV, DEFAULT_MAX_ATTEMPTS, int))


def _env_number(name: str, default, kind):
    """A positive number from the environment, ``default`` when unset; a clear error when malformed."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{name}={text!r}: expected a positive {kind.__name__} (default {default}).")
    return value


def llm_configured() -> bool:
    return llm_settings() is not None


def estimate_tokens(text: str) -> int:
    """Token count estimated as characters / 4 (no tokenizer download)."""
    return max(1, len(text) // CHARS_PER_TOKEN)


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Cost at list prices, or None for a model without one (a local server, an unknown model)."""
    price = PRICES_PER_MILLION.get(model)
    if price is None:
        return None
    return round((prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6, 6)


def make_client(settings: LLMSettings):
    """An ``openai.AsyncOpenAI`` client that never retries on its own (``chat`` does)."""
    try:
        from openai import AsyncOpenAI
    except ImportError as exc:
        raise ImportError('The LLM client needs openai: pip install -e ".[llm]"') from exc
    return AsyncOpenAI(api_key=settings.api_key or "not-needed", base_url=settings.base_url,
                       timeout=settings.timeout_s, max_retries=0)


class RateLimiter:
    """Spaces request starts at least ``60 / rpm`` seconds apart (no limit when ``rpm`` is None)."""

    def __init__(self, rpm: float | None):
        if rpm is not None and rpm <= 0:
            raise ValueError(f"rpm must be positive, got {rpm}")
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


def backoff_s(attempt: int, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S,
              retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter; a server's Retry-After is respected (up to ``cap``)."""
    delay = random.uniform(0, min(cap, base * 2 ** (attempt - 1)))
    return min(cap, max(delay, retry_after or 0.0))


async def chat(client, settings: LLMSettings, messages: list[dict], *, json_mode: bool = False,
               limiter: RateLimiter | None = None, on_attempt=None, on_retry=None) -> tuple[str, dict]:
    """One chat completion with retries; return ``(content, usage)`` or raise ``RequestFailed``/``LLMError``.

    429, 5xx, timeouts and connection errors are retried with backoff; other HTTP errors are not.
    ``on_attempt()`` is called before every attempt (to count requests), ``on_retry(reason)`` before
    waiting to retry (to show what the run waits on).
    """
    import openai

    kwargs = {"response_format": {"type": "json_object"}} if json_mode else {}
    reason = "no attempt made"
    for attempt in range(1, settings.max_attempts + 1):
        if limiter:
            await limiter.wait()
        if on_attempt:
            on_attempt()
        retry_after = None
        try:
            response = await client.chat.completions.create(model=settings.model, messages=messages, **kwargs)
            usage = response.usage
            return response.choices[0].message.content or "", {
                "prompt_tokens": usage.prompt_tokens if usage else 0,
                "completion_tokens": usage.completion_tokens if usage else 0,
            }
        except openai.APIError as exc:
            if is_refusal(exc):
                raise refusal(exc, settings) from None
            reason = failure_reason(exc, settings)
            if not is_retryable(exc):
                raise RequestFailed(reason) from None
            retry_after = _retry_after(exc.response) if isinstance(exc, openai.RateLimitError) else None
        if attempt < settings.max_attempts:
            if on_retry:
                on_retry(reason)
            await asyncio.sleep(backoff_s(attempt, retry_after=retry_after))
    raise RequestFailed(f"{reason} {after_attempts(settings.max_attempts)}")


def after_attempts(n: int) -> str:
    """``after 1 attempt``, ``after 4 attempts``."""
    return f"after {n} attempt{'' if n == 1 else 's'}"


def is_refusal(exc: Exception) -> bool:
    """A failure that retrying cannot fix: the key, the model or the base URL is wrong (401, 403, 404)."""
    import openai

    return isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError))


def refusal(exc: Exception, settings: LLMSettings) -> LLMError:
    """The one-line error for a refused request, naming what to check."""
    return LLMError(f"The LLM endpoint refused the request (HTTP {getattr(exc, 'status_code', '?')}): check "
                    f"the key, model and base URL ({settings.describe()}).")


def is_retryable(exc: Exception) -> bool:
    """429, 5xx, timeouts and connection errors: worth another attempt."""
    import openai

    return isinstance(exc, (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError))


def failure_reason(exc: Exception, settings: LLMSettings) -> str:
    """Why a request failed, as the reports name it: ``timeout (> 30 s)``, ``server_error (500)``, ..."""
    import openai

    if isinstance(exc, openai.RateLimitError):
        return "rate_limited (429)"
    if isinstance(exc, openai.InternalServerError):
        return f"server_error ({exc.status_code})"
    if isinstance(exc, openai.APITimeoutError):  # a subclass of APIConnectionError: asked first
        return f"timeout (> {settings.timeout_s:g} s)"
    if isinstance(exc, openai.APIConnectionError):
        return "connection_error"
    if isinstance(exc, openai.APIStatusError):
        return f"http_{exc.status_code}"
    return type(exc).__name__


def _retry_after(response) -> float | None:
    try:
        return float(response.headers.get("retry-after"))
    except (TypeError, ValueError, AttributeError):
        return None


def cache_key(**parts) -> str:
    """A stable hash of the parts that determine a response (model, prompt version, input, ...)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


class JsonCache:
    """One small JSON file per key, written atomically: a killed run loses at most the requests in flight."""

    def __init__(self, folder: Path | str | None):
        self.folder = Path(folder) if folder else None

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            return read_json(path)
        except json.JSONDecodeError:
            return None

    def put(self, key: str, value: dict) -> None:
        path = self._path(key)
        if path is not None:
            write_json(path, value)

    def _path(self, key: str) -> Path | None:
        return self.folder / f"{key}.json" if self.folder else None


def run_sync(coro):
    """Run a coroutine to completion, also from Jupyter, whose loop is already running: then the coroutine
    runs on a loop in a thread, and interrupting the cell (KeyboardInterrupt) cancels it cleanly."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    task = asyncio.run_coroutine_threadsafe(_as_task(coro), loop).result()
    try:
        return asyncio.run_coroutine_threadsafe(_wait(task), loop).result()
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(task.cancel)
        asyncio.run_coroutine_threadsafe(asyncio.wait([task]), loop).result()
        raise
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def _as_task(coro) -> asyncio.Task:
    return asyncio.ensure_future(coro)


async def _wait(task: asyncio.Task):
    return await task
