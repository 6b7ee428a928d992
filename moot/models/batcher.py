"""Continuous batching over one llama.cpp context: concurrent requests share each forward pass.

Each request is a sequence of its own in one context (`n_seq_max` slots, one unified KV
cache); requests join and leave between steps; a step's batch holds one new token for every
generating sequence and chunks of the prompts being read. A slot keeps the tokens it last
held after its request ends, so a prompt that extends them (a debater's next speech, a judge
ruling again) reads only its new tokens: the prefix cache, bounded by the context's cells,
evicted least recently used, private to one loaded model. A prompt that begins as another
sequence's does (best-of-N drafts of one speech, a seat's system prompt in every episode),
running or cached, shares that sequence's cells for its head instead of reading it: the one
cache holds every sequence, and a cell may belong to several. A request whose head another
is still reading waits for that rather than read the same tokens beside it.

Everything here runs on the loaded model's one thread (`LoadedModel`): `step()` is called in
a loop there while requests are in flight; other threads only enqueue and flag cancellation.

Sampling mirrors llama-cpp-python's `create_completion` (greedy at temperature 0; otherwise
top-k 40, typical 1, top-p 0.95, min-p 0.05, temperature, seeded draw), stop strings are
matched on the detokenised bytes as it does, and `max_tokens` is cut to the context window.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
import time
from collections import deque
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

from moot.models.base import ProviderError

# Prompt tokens per decode call across all sequences (llama.cpp's default n_batch).
N_BATCH = 512
# A head shared with another sequence shorter than this is read again rather than copied.
MIN_SHARE = 16


@dataclass(eq=False)
class Job:
    """One request as the batcher sees it: tokens in, text and counts out."""

    prompt: list[int]
    max_tokens: int
    temperature: float
    seed: int
    stop: list[bytes]
    grammar: str | None = None
    # label -> token ids, read at the answer step (the first one, or the first step whose
    # sampled token is a label's)
    label_ids: dict[str, list[int]] | None = None
    answer_first: bool = False
    future: Future[Any] = field(default_factory=Future)
    cancelled: bool = False
    # filled on the model thread
    slot: int = -1
    pos: int = 0
    todo: list[int] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)
    text: bytes = b""
    sampler: Any = None
    reused: int = 0
    steps: list[dict[str, float]] = field(default_factory=list)
    label_result: dict[str, float] | None = None


@dataclass
class Slot:
    seq: int
    tokens: list[int] = field(default_factory=list)  # what the KV cache holds for this seq
    job: Job | None = None
    used: int = 0  # LRU clock


@dataclass
class Stats:
    requests: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens not read: cached in the slot, or shared (below)
    shared_tokens: int = 0  # of those, the cells of another sequence's prompt
    completion_tokens: int = 0
    decode_calls: int = 0
    evictions: int = 0
    # Steps that only generated (one new token per sequence, no prompt being read): their
    # time (from the end of the step before, when that one only generated too: the
    # scheduling between steps counts, as it does for a loop that calls llama.cpp directly),
    # and the tokens they decoded. Generation's own rate, apart from reading prompts
    # (bench/batching.py).
    generation_s: float = 0.0
    generation_steps: int = 0
    generation_tokens: int = 0
    # Steps that read prompt tokens (and carried the generating sequences' tokens along):
    # their time, decoding and sampling, and the tokens they decoded. With the steps above,
    # where a run's time went (bench/batching.py quickstart).
    reading_s: float = 0.0
    reading_steps: int = 0
    reading_tokens: int = 0


class Batcher:
    """The scheduler for one loaded model. `llm` is its `llama_cpp.Llama` (the weights and
    vocabulary); the batched context is created here beside it, from the same model."""

    def __init__(self, *, n_ctx: int, slots: int, cells: int, n_threads: int, reuse: bool = True) -> None:
        self.n_ctx, self.n_slots, self.cells, self.reuse = n_ctx, slots, cells, reuse
        self.n_threads = n_threads
        self.ctx: Any = None
        self.inbox: deque[Job] = deque()
        self.waiting: deque[Job] = deque()
        self.lock = threading.Lock()
        self.clock = itertools.count(1)
        self.stats = Stats()
        self.running = False
        self._generated_until: float | None = None  # the end of the last step, if it only generated

    def open(self, llm: Any) -> None:
        """Create the batched context beside `llm` (its weights and vocabulary), on the
        model's thread."""
        import llama_cpp as lc

        self.lc = lc
        self.llm = llm
        slots, cells, n_threads = self.n_slots, self.cells, self.n_threads
        # The high-level context's own parameters (flash attention off, its batch sizes...),
        # so that one request alone gets the numbers llama-cpp-python would give it.
        params = lc.llama_context_params()
        ctypes.pointer(params)[0] = llm.context_params
        params.n_ctx = cells
        params.n_batch = N_BATCH
        params.n_ubatch = min(N_BATCH, llm.context_params.n_ubatch)
        params.n_seq_max = slots
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        # One pool of cells for all sequences: a separate stream per sequence would split
        # the cells evenly and cut prompt batches into equal-length pieces.
        params.kv_unified = True
        if slots > 1:
            # Sequences share the cache, so each token's attention spans every sequence's
            # cells; llama.cpp's flash attention skips the masked ones, the plain one
            # multiplies through them. (One slot keeps llama-cpp-python's own setting.)
            params.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_ENABLED
        self.ctx = lc.llama_init_from_model(llm.model, params)
        if not self.ctx:
            raise ProviderError("llama.cpp could not create a batched context", retryable=False)
        self.mem = lc.llama_get_memory(self.ctx)
        self.vocab = llm._model.vocab
        self.n_vocab = lc.llama_vocab_n_tokens(self.vocab)
        self.slots = [Slot(seq=i) for i in range(slots)]
        self.batch = lc.llama_batch_init(N_BATCH + slots, 0, 1)
        self.piece_buf = ctypes.create_string_buffer(64)

    # -- any thread -------------------------------------------------------------------------

    def submit(self, job: Job) -> bool:
        """Queue a job; True when the caller must start `run()` on the model's thread (it
        was not running)."""
        with self.lock:
            self.inbox.append(job)
            start, self.running = not self.running, True
            return start

    # -- the model's thread -------------------------------------------------------------------

    def _active(self) -> list[Slot]:
        return [s for s in self.slots if s.job is not None]

    def run(self) -> None:
        """Steps until nothing is queued or running."""
        while True:
            try:
                self.step()
            except Exception as exc:
                self._fail_all(exc)
            with self.lock:
                if not self.inbox and not self.waiting and not self._active():
                    self.running = False
                    return

    def step(self) -> None:
        with self.lock:
            self.waiting.extend(self.inbox)
            self.inbox.clear()
        self._drop_cancelled()
        self._admit()
        active = self._active()
        if not active:
            self._generated_until = None  # idle time is not generating
            return
        self._decode(active)

    def _drop_cancelled(self) -> None:
        for slot in self.slots:
            if slot.job is not None and slot.job.cancelled:
                self._release(slot, None)
        self.waiting = deque(j for j in self.waiting if not j.cancelled)

    def _held(self, exclude: Slot | None = None) -> int:
        """Cells promised: running requests at their full length, idle slots' cached tokens."""
        total = 0
        for s in self.slots:
            if s is exclude:
                continue
            if s.job is not None:
                total += min(len(s.job.prompt) + s.job.max_tokens, self.n_ctx)
            else:
                total += len(s.tokens)
        return total

    def _admit(self) -> None:
        later: list[Job] = []  # waiting for a twin's prompt to be read; first in line again after
        try:
            while self.waiting:
                job = self.waiting[0]
                free = [s for s in self.slots if s.job is None]
                if not free:
                    return
                if self.reuse and self._twin_reading(job.prompt):
                    later.append(self.waiting.popleft())
                    continue
                slot, keep = self._pick(free, job.prompt)
                need = min(len(job.prompt) + job.max_tokens, self.n_ctx)
                # Evict other idle slots' caches, least recently used first, until it fits.
                for other in sorted(free, key=lambda s: s.used):
                    if self._held(exclude=slot) + need <= self.cells:
                        break
                    if other is not slot and other.tokens:
                        self._forget(other)
                        self.stats.evictions += 1
                if self._held(exclude=slot) + need > self.cells:
                    return  # wait for a running request to finish
                self.waiting.popleft()
                self._start(slot, job, *self._share(slot, keep, job.prompt))
        finally:
            self.waiting.extendleft(reversed(later))

    def _pick(self, free: list[Slot], prompt: list[int]) -> tuple[Slot, int]:
        """The free slot whose cache the prompt mostly extends (the longest such prefix),
        else an empty slot, else the least recently used one; and how many of its cached
        tokens to keep (never the whole prompt: the last prompt token is decoded again for
        its logits). A short shared head (a system prompt) does not overwrite a long cache:
        it is shared from there (`_share`)."""
        by_age = sorted(free, key=lambda s: s.used)
        best, best_n = None, 0
        for s in by_age if self.reuse else ():
            n = _common(s.tokens, prompt)
            if n > best_n and 2 * n >= len(s.tokens):
                best, best_n = s, n
        if best is None:
            empty = [s for s in by_age if not s.tokens]
            best = empty[0] if empty else by_age[0]
            best_n = _common(best.tokens, prompt) if self.reuse else 0
        return best, min(best_n, len(prompt) - 1)

    def _share(self, slot: Slot, keep: int, prompt: list[int]) -> tuple[int, Slot | None]:
        """Another slot, running or idle, whose cells hold more of the prompt than `slot`
        keeps, to share them from (and how many); else `slot`'s own."""
        source = None
        for s in self.slots if self.reuse else ():
            if s is not slot and (n := min(_common(s.tokens, prompt), len(prompt) - 1)) >= max(keep + 1, MIN_SHARE):
                source, keep = s, n
        return keep, source

    def _twin_reading(self, prompt: list[int]) -> bool:
        """Whether a running request is still reading a head this one shares, at least
        MIN_SHARE tokens beyond what any slot's cells hold already (best-of-N drafts, and
        seats of one kind in different episodes, arrive together). Waiting for it costs a
        step at most while the batch has other prompts to read, and saves reading the head."""
        have = max(_common(s.tokens, prompt) for s in self.slots)
        for s in self.slots:
            other = s.job
            if other is not None and not other.generated and other.todo:
                n = _common(other.prompt, prompt)
                if n >= have + MIN_SHARE:
                    return True
        return False

    def forget_idle(self) -> int:
        """Drop every idle slot's cached prefix, on the model's thread between requests (a
        benchmark measuring each batch size from the same clean start). Returns how many."""
        idle = [s for s in self.slots if s.job is None and s.tokens]
        for slot in idle:
            self._forget(slot)
        return len(idle)

    def _forget(self, slot: Slot) -> None:
        if self.ctx is None:
            slot.tokens = []
            return
        self.lc.llama_memory_seq_rm(self.mem, slot.seq, -1, -1)
        slot.tokens = []

    def _start(self, slot: Slot, job: Job, keep: int, source: Slot | None = None) -> None:
        lc = self.lc
        if source is not None:  # the head's cells become this sequence's too: nothing is copied
            lc.llama_memory_seq_rm(self.mem, slot.seq, -1, -1)
            lc.llama_memory_seq_cp(self.mem, source.seq, slot.seq, 0, keep)
            slot.tokens = source.tokens[:keep]
            self.stats.shared_tokens += keep
        elif keep < len(slot.tokens):
            lc.llama_memory_seq_rm(self.mem, slot.seq, keep, -1)
        slot.tokens = slot.tokens[:keep]
        slot.job, slot.used = job, next(self.clock)
        job.slot, job.pos, job.todo, job.reused = slot.seq, keep, job.prompt[keep:], keep
        try:
            job.sampler = self._sampler(job)
        except ProviderError as exc:
            self._release(slot, exc)
            return
        self.stats.requests += 1
        self.stats.prompt_tokens += len(job.prompt)
        self.stats.reused_tokens += keep

    def _sampler(self, job: Job) -> Any:
        """llama.cpp's sampler chain for the job, as llama-cpp-python builds it; None for
        greedy decoding, which `_sample` does itself: the first highest logit, the token
        llama.cpp's greedy sampler picks, read in place (the sampler first copies all 49,152
        candidates: 166 us a token, bench/)."""
        lc = self.lc
        if job.temperature <= 0 and not job.grammar:
            return None
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        if job.grammar:
            grammar = lc.llama_sampler_init_grammar(self.vocab, job.grammar.encode(), b"root")
            if not grammar:
                lc.llama_sampler_free(chain)
                raise ProviderError("invalid grammar (GBNF)", retryable=False)
            lc.llama_sampler_chain_add(chain, grammar)
        if job.temperature <= 0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
        else:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(40))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_typical(1.0, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(0.95, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_min_p(0.05, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(job.temperature))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(job.seed))
        return chain

    def _decode(self, active: list[Slot]) -> None:
        lc, batch = self.lc, self.batch
        started = time.perf_counter()
        n = 0
        reading = False  # a prompt chunk in this step
        outputs: list[tuple[Slot, int]] = []
        # Generating sequences first (one token each), then prompt chunks in the room left.
        room = N_BATCH
        for slot in sorted(active, key=lambda s: not (s.job and s.job.generated)):
            job = slot.job
            assert job is not None
            take = job.todo[:1] if job.generated else job.todo[:room]
            if not take:
                continue
            reading |= not job.generated
            for k, tok in enumerate(take):
                batch.token[n] = tok
                batch.pos[n] = job.pos + k
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = slot.seq
                last = k == len(take) - 1 and len(take) == len(job.todo)
                batch.logits[n] = 1 if last else 0
                if last:
                    outputs.append((slot, n))
                n += 1
            room -= len(take)
            job.pos += len(take)
            slot.tokens.extend(take)
            del job.todo[: len(take)]
            if room <= 0:
                break
        if n == 0:
            return
        batch.n_tokens = n
        rc = lc.llama_decode(self.ctx, batch)
        self.stats.decode_calls += 1
        if rc != 0:
            raise ProviderError(f"llama_decode failed ({rc})", retryable=rc == 1)
        for slot, i in outputs:
            self._sample(slot, i)
        ended = time.perf_counter()
        stats = self.stats
        if reading:
            stats.reading_s += ended - started
            stats.reading_steps += 1
            stats.reading_tokens += n
        else:
            stats.generation_s += ended - (self._generated_until or started)
            stats.generation_steps += 1
            stats.generation_tokens += n
        self._generated_until = None if reading else ended

    def _sample(self, slot: Slot, i: int) -> None:
        lc = self.lc
        job = slot.job
        assert job is not None
        step = len(job.generated)
        if job.label_ids and job.label_result is None and step < (1 if job.answer_first else 64):
            job.steps.append(self._label_logprobs(i, job.label_ids))
        if job.sampler is None:  # greedy (see `_sampler`)
            tok = int(self._scores(i).argmax())
        else:
            tok = lc.llama_sampler_sample(job.sampler, self.ctx, i)
        if job.label_ids and job.label_result is None and step < len(job.steps):
            if job.answer_first or any(tok in ids for ids in job.label_ids.values()):
                job.label_result = job.steps[step]
        if lc.llama_vocab_is_eog(self.vocab, tok):
            self._finish(slot)
            return
        job.generated.append(tok)
        job.text += self._piece(tok)
        if job.stop:
            hits = [job.text.index(s) for s in job.stop if s in job.text]
            if hits:
                job.text = job.text[: min(hits)]
                self._finish(slot)
                return
        if len(job.generated) >= job.max_tokens:
            self._finish(slot)
            return
        job.todo = [tok]

    def _piece(self, tok: int) -> bytes:
        buf = self.piece_buf
        n = self.lc.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, False)
        if n < 0:
            self.piece_buf = buf = ctypes.create_string_buffer(-n)
            n = self.lc.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, False)
        return buf.raw[:n]

    def _scores(self, i: int) -> Any:
        """The logits at batch position i, in place (a numpy view of llama.cpp's buffer)."""
        import numpy as np

        ptr = self.lc.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), (self.n_vocab,))

    def _label_logprobs(self, i: int, label_ids: dict[str, list[int]]) -> dict[str, float]:
        import numpy as np

        scores = self._scores(i)
        peak = float(scores.max())
        lse = peak + float(np.log(np.exp(scores - peak).sum()))
        return {
            lab: float(np.logaddexp.reduce([float(scores[t]) for t in ts])) - lse if ts else float("-inf")
            for lab, ts in label_ids.items()
        }

    def _finish(self, slot: Slot) -> None:
        job = slot.job
        assert job is not None
        self.stats.completion_tokens += len(job.generated)
        result = (
            job.text.decode("utf-8", errors="ignore"),
            len(job.prompt),
            len(job.generated),
            job.label_result if job.label_ids else None,
            job.reused,
        )
        self._release(slot, None, result)

    def _release(self, slot: Slot, error: BaseException | None, result: Any = None) -> None:
        job = slot.job
        slot.job, slot.used = None, next(self.clock)
        if not self.reuse:
            self._forget(slot)
        if job is None:
            return
        if job.sampler is not None:
            self.lc.llama_sampler_free(job.sampler)
            job.sampler = None
        _settle(job, error, result)

    def abort(self, exc: Exception) -> None:
        """The loop could not start (the context could not be made): fail what is queued
        and let the next request try again."""
        error = ProviderError(f"llama.cpp: {exc}", retryable=False)
        with self.lock:
            pending = list(self.waiting) + list(self.inbox)
            self.waiting.clear()
            self.inbox.clear()
            self.running = False
        for job in pending:
            _settle(job, error, None)

    def _fail_all(self, exc: Exception) -> None:
        error = exc if isinstance(exc, ProviderError) else ProviderError(str(exc), retryable=False)
        for slot in self.slots:
            if slot.job is not None:
                self._release(slot, error)
            self._forget(slot)
        with self.lock:
            pending = list(self.waiting) + list(self.inbox)
            self.waiting.clear()
            self.inbox.clear()
        for job in pending:
            _settle(job, error, None)

    def close(self) -> None:
        if self.ctx:
            self.lc.llama_batch_free(self.batch)
            self.lc.llama_free(self.ctx)
            self.ctx = None


def _settle(job: Job, error: BaseException | None, result: Any) -> None:
    """Resolve a job's future once; its caller may have cancelled it meanwhile (from the
    event loop's thread), which must not fail the batch."""
    try:
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
        elif job.cancelled:
            job.future.cancel()
        else:
            job.future.set_result(result)
    except InvalidStateError:
        pass


def _common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
