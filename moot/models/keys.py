"""Which API key a model needs, checked before anything runs.

A study on a model whose key is not set would otherwise start, retry each call and fail every
episode. The common providers' variables are known here, so the check costs no litellm import
(~2.5 s); for any other provider litellm's own `validate_environment` answers (a test keeps
this table in step with litellm's).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from moot.errors import ConfigError

if TYPE_CHECKING:
    from moot.models.gateway import ModelSettings

# provider prefix -> the variable litellm reads the key from
PROVIDER_KEYS = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "xai": "XAI_API_KEY",
    "cohere": "COHERE_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
}
# Served without a key of ours: the local and scripted models, people, and the providers
# whose servers are one's own.
KEYLESS_PREFIXES = ("scripted", "local/", "human", "moot-scripted/", "ollama/", "ollama_chat/",
                    "hosted_vllm/", "vllm/", "lm_studio/", "llamafile/")  # fmt: skip


def missing_key(model: str, settings: ModelSettings, *, ask_litellm: bool = True) -> str | None:
    """The environment variable `model` needs and the environment lacks, else None.

    A model with an `api_base` (or endpoints) of its own is a server one runs: no key is
    assumed. With `ask_litellm=False`, a provider outside the table (or a name without a
    provider prefix) is left to the model's own check when it is made.
    """
    if settings.api_key_env:
        return None if settings.api_key_env in os.environ else settings.api_key_env
    if settings.api_base or settings.endpoints or model.startswith(KEYLESS_PREFIXES):
        return None
    if "mock_response" in settings.params:  # litellm answers offline, calling no one
        return None
    provider = model.partition("/")[0] if "/" in model else None
    if provider in PROVIDER_KEYS:
        env = PROVIDER_KEYS[provider]
        return None if os.environ.get(env) else env
    if not ask_litellm:
        return None
    from moot.models.litellm_api import _import_litellm

    try:
        missing = _import_litellm().validate_environment(model=model).get("missing_keys") or []
    except Exception:  # a model litellm cannot place: its own check names it
        return None
    keys = [m for m in missing if m.endswith(("_KEY", "_TOKEN"))]
    return keys[0] if keys else None


def require_key(model: str, settings: ModelSettings, *, ask_litellm: bool = True) -> None:
    """Refuse a model whose key is not set: a ConfigError naming the model and the variable."""
    env = missing_key(model, settings, ask_litellm=ask_litellm)
    if env:
        raise ConfigError(
            f"model {model}: environment variable {env} is not set (export it, name another with "
            f"models.{model}.api_key_env, or give the model an api_base)"
        )
