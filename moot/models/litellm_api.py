"""Every real provider, through litellm's `acompletion`.

litellm is imported here, on first use: it costs ~2.5 s, and without
LITELLM_LOCAL_MODEL_COST_MAP set before import it fetches a price file over the network.

`moot-scripted/<label>` reaches the scripted model *through* litellm (a registered
CustomLLM), so tests and benchmarks can exercise and measure litellm's own path offline.
"""

from __future__ import annotations

import math
import os
from datetime import UTC
from typing import TYPE_CHECKING, Any

from moot.errors import ConfigError
from moot.models import forms as forming
from moot.models.base import GenerateRequest, GenerateResult, ProviderError
from moot.models.keys import require_key

if TYPE_CHECKING:
    from moot.models.gateway import ModelSettings
    from moot.transcript.images import Image

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

SCRIPTED_PREFIX = "moot-scripted"
_litellm: Any = None


def supports_vision(name: str) -> bool:
    """litellm's model map on whether a model takes images (False when it does not know it)."""
    try:
        return bool(_import_litellm().supports_vision(model=name))
    except Exception:  # an unknown model or provider: not known to take them
        return False


def with_image_parts(messages: list[dict[str, str]], images: tuple[Image, ...]) -> list[dict[str, Any]]:
    """The first user message as content parts, its text then each image inline, in the
    OpenAI form every litellm provider translates."""
    out: list[dict[str, Any]] = list(messages)
    i = next(k for k, m in enumerate(out) if m.get("role") == "user")
    parts: list[dict[str, Any]] = [{"type": "text", "text": out[i]["content"]}]
    parts += [{"type": "image_url", "image_url": {"url": image.data_url()}} for image in images]
    out[i] = {**out[i], "content": parts}
    return out


def _import_litellm() -> Any:
    global _litellm
    if _litellm is None:
        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        os.environ.setdefault("LITELLM_TELEMETRY", "False")
        import litellm

        litellm.telemetry = False
        litellm.suppress_debug_info = True
        litellm.custom_provider_map = [
            p for p in litellm.custom_provider_map if p.get("provider") != SCRIPTED_PREFIX
        ] + [{"provider": SCRIPTED_PREFIX, "custom_handler": _scripted_handler(litellm)}]
        _litellm = litellm
    return _litellm


class LiteLLMModel:
    def __init__(self, name: str, settings: ModelSettings) -> None:
        self.name = name
        self.settings = settings
        self._litellm = _import_litellm()
        try:
            self._litellm.get_llm_provider(name, api_base=settings.api_base)
        except Exception:
            raise ConfigError(
                f"unknown model {name!r}: use scripted, local/..., human, or a litellm name "
                "with its provider prefix, e.g. openai/gpt-4o-mini"
            ) from None
        # before the first episode: without its key, every call of a study would fail
        require_key(name, settings)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": "litellm", "litellm": _version()}
        if self.settings.api_base:
            out["api_base"] = self.settings.api_base
        return out

    def _api_key(self) -> str | None:
        env = self.settings.api_key_env
        return os.environ.get(env) if env else None

    def takes_schema(self) -> bool:
        """Whether the provider constrains a reply to a JSON schema (`response_format`):
        litellm's model table says so, or the scenario's `params` set `response_format`
        support explicitly (`schema_format: true`, for a local server litellm does not know)."""
        explicit = self.settings.params.get("schema_format")
        if explicit is not None:
            return bool(explicit)
        try:
            return bool(self._litellm.supports_response_schema(model=self.name))
        except Exception:
            return False

    async def generate_in_form(self, request: GenerateRequest, form: forming.Form) -> GenerateResult:
        """A call with the form's `response_format` where the provider takes one (the
        gateway checks the reply either way)."""
        fmt = forming.response_format(form) if form.kind == "schema" and self.takes_schema() else None
        return await self.generate(request, fmt)

    async def generate(self, request: GenerateRequest, response_format: dict[str, Any] | None = None) -> GenerateResult:
        litellm = self._litellm
        s = self.settings
        kwargs: dict[str, Any] = {k: v for k, v in s.params.items() if k != "schema_format"}
        if response_format is not None:
            kwargs["response_format"] = response_format
        kwargs.update(
            model=self.name,
            messages=with_image_parts(request.messages, request.images) if request.images else request.messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            num_retries=0,  # the gateway retries, with the same rules for every provider
            timeout=s.timeout,
        )
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if s.api_base:
            kwargs["api_base"] = s.api_base
        key = self._api_key()
        if key:
            kwargs["api_key"] = key
        elif s.api_base:  # a local server needs no key, but the OpenAI client insists on one
            kwargs["api_key"] = "no-key"
        if request.answer_labels:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = 20
        try:
            response = await self._complete(kwargs)
        except Exception as exc:  # classified once, here, for the gateway
            raise _classify(litellm, exc, key) from None
        choice = response.choices[0]
        text = choice.message.content or ""
        usage = getattr(response, "usage", None)
        labels = request.answer_labels
        return GenerateResult(
            text=text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost=_cost(litellm, response),
            label_logprobs=_label_logprobs(choice, labels) if labels else None,
        )

    async def _complete(self, kwargs: dict[str, Any]) -> Any:
        """One request through litellm (the Router's subclass sends it to an endpoint)."""
        return await self._litellm.acompletion(**kwargs)


def _version() -> str:
    from importlib import metadata

    return metadata.version("litellm")


def _cost(litellm: Any, response: Any) -> float | None:
    hidden = getattr(response, "_hidden_params", None) or {}
    cost = hidden.get("response_cost")
    if cost is None:
        try:
            cost = litellm.completion_cost(completion_response=response)
        except Exception:
            return None  # unknown price (a local server): recorded as unknown, not zero
    return float(cost)


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _label_logprobs(choice: Any, labels: tuple[str, ...]) -> dict[str, float] | None:
    """Label log-probabilities at the first reply token that names a label."""
    logprobs = _get(choice, "logprobs")  # absent entirely when the server gave none
    content = _get(logprobs, "content") if logprobs is not None else None
    if not content:
        return None
    for position in content:
        if (_get(position, "token") or "").strip() not in labels:
            continue
        out = {label: -math.inf for label in labels}
        for alt in _get(position, "top_logprobs") or []:
            tok = (_get(alt, "token") or "").strip()
            if tok in out:
                out[tok] = float(math.log(math.exp(out[tok]) + math.exp(_get(alt, "logprob"))))
        if all(v == -math.inf for v in out.values()):
            out[(_get(position, "token") or "").strip()] = float(_get(position, "logprob"))
        return out
    return None


def _classify(litellm: Any, exc: Exception, secret: str | None) -> ProviderError:
    message = f"{type(exc).__name__}: {exc}"
    status = getattr(exc, "status_code", None)
    # litellm reports dropped connections and broken bodies as 500 too: name the status
    # only when a real response came back (it then carries the provider's headers)
    if isinstance(status, int) and getattr(exc, "litellm_response_headers", None) is not None:
        message = f"HTTP {status}: {message}"
    if secret:
        message = message.replace(secret, "***")
    retry_after = None
    # litellm passes the provider's headers on in different places depending on the mapping
    for headers in (
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
    ):
        if retry_after is None and headers is not None:
            try:
                retry_after = _retry_after(headers.get("retry-after"))
            except AttributeError:
                retry_after = None
    retryable_types = tuple(
        t
        for t in (
            getattr(litellm, "RateLimitError", None),
            getattr(litellm, "Timeout", None),
            getattr(litellm, "APIConnectionError", None),
            getattr(litellm, "InternalServerError", None),
            getattr(litellm, "ServiceUnavailableError", None),
            getattr(litellm, "BadGatewayError", None),
        )
        if t is not None
    )
    retryable = isinstance(exc, retryable_types) or (isinstance(status, int) and status >= 500)
    return ProviderError(message.splitlines()[0][:500], retryable=retryable, retry_after=retry_after)


def _retry_after(value: Any) -> float | None:
    """Retry-After as seconds or as an HTTP date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _scripted_handler(litellm: Any) -> Any:
    from moot.models.scripted import ScriptedModel

    class ScriptedThroughLiteLLM(litellm.CustomLLM):
        """The scripted model behind litellm's own request/response path."""

        def __init__(self) -> None:
            super().__init__()
            self.model = ScriptedModel(SCRIPTED_PREFIX)

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            params = kwargs.get("optional_params") or {}
            req = GenerateRequest(
                messages=messages,
                max_tokens=int(params.get("max_tokens", 256)),
                temperature=float(params.get("temperature", 0.0)),
                # a judging request (logprobs asked for) gets a verdict, in text
                answer_labels=("A", "B") if params.get("logprobs") else None,
            )
            result = await self.model.generate(req)
            return litellm.ModelResponse(
                model=model,
                choices=[{"message": {"role": "assistant", "content": result.text}}],
                usage={
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    "total_tokens": result.prompt_tokens + result.completion_tokens,
                },
            )

    return ScriptedThroughLiteLLM()
