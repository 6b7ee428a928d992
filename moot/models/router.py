"""One model served by several endpoints (a pool of vLLM servers), through litellm's Router.

    models:
      hosted_vllm/llama-3.1-8b:
        max_concurrency: 64            # across the pool (and, on Ray, across the cluster)
        endpoints:
          - {api_base: "http://gpu1:8000/v1"}
          - {api_base: "http://gpu2:8000/v1", weight: 2}
          - {api_base: "https://backup.example/v1", api_key_env: BACKUP_KEY, fallback: true}
        routing: {strategy: least-busy, allowed_fails: 1, cooldown: 30}

The Router picks an endpoint per call (by weight, or the least busy one), leaves one that
keeps failing out for `cooldown` seconds, and within one attempt moves on to another endpoint
when one fails; `fallback` endpoints are used only when the others fail. Everything else is
the gateway's as for any model: its concurrency and rate limits cover the whole pool, its
retries with backoff come after the Router has tried the endpoints, and every call is
recorded once, with its attempts.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from moot.errors import ConfigError
from moot.models.litellm_api import LiteLLMModel

if TYPE_CHECKING:
    from moot.models.gateway import ModelSettings

FALLBACK = "{name}#fallback"


class RouterModel(LiteLLMModel):
    def __init__(self, name: str, settings: ModelSettings) -> None:
        endpoints = settings.endpoints or []
        for e in endpoints:
            env = e.get("api_key_env")
            if env and env not in os.environ:
                raise ConfigError(f"model {name}: environment variable {env} is not set")
        super().__init__(name, settings)
        routing = settings.routing or {}
        fallback = FALLBACK.format(name=name)
        primary = [e for e in endpoints if not e.get("fallback")]
        model_list = [
            {
                "model_name": fallback if e.get("fallback") else name,
                "litellm_params": {
                    "model": e.get("model") or name,
                    "api_base": e["api_base"],
                    # the OpenAI client insists on a key; a local server needs none
                    "api_key": os.environ[e["api_key_env"]] if e.get("api_key_env") else "no-key",
                    "weight": e.get("weight", 1.0),
                },
            }
            for e in endpoints
        ]
        retries = routing.get("retries")
        if retries is None:
            # The Router may pick a failing endpoint again until it is cooled down (after
            # allowed_fails + 1 failures): enough tries to get past every other one.
            retries = (len(primary) - 1) * (routing.get("allowed_fails", 1) + 1)
        self.router = self._litellm.Router(
            model_list=model_list,
            routing_strategy=routing.get("strategy", "simple-shuffle"),
            allowed_fails=routing.get("allowed_fails", 1),
            cooldown_time=routing.get("cooldown", 30.0),
            num_retries=retries,
            retry_after=0,  # the next endpoint at once; the gateway's backoff comes after
            fallbacks=[{name: [fallback]}] if len(primary) < len(endpoints) else [],
            timeout=settings.timeout,
        )

    def describe(self) -> dict[str, Any]:
        routing = self.settings.routing or {}
        return super().describe() | {
            "router": routing.get("strategy", "simple-shuffle"),
            "endpoints": [
                {"api_base": e["api_base"], "weight": e.get("weight", 1.0), "fallback": bool(e.get("fallback"))}
                for e in self.settings.endpoints or []
            ],
        }

    async def _complete(self, kwargs: dict[str, Any]) -> Any:
        kwargs.pop("num_retries", None)  # the Router's own, across endpoints
        kwargs.pop("api_base", None)
        kwargs.pop("api_key", None)
        return await self.router.acompletion(**kwargs)

    def cooling_down(self) -> list[str]:
        """The api_base of each endpoint the Router is leaving out now."""
        from litellm.router_utils.cooldown_handlers import get_cooldown_deployments

        ids = get_cooldown_deployments(self.router, None)
        by_id = {d["model_info"]["id"]: d["litellm_params"]["api_base"] for d in self.router.model_list}
        return [by_id[i] for i in ids if i in by_id]
