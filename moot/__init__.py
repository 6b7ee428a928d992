"""moot: multi-agent debate and simulation for scalable-oversight research.

The public API loads lazily, so `import moot` (and `moot --help`) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "analyze": "moot.analysis",
    "frames": "moot.analysis",
    "Bus": "moot.engine.bus",
    "ConfigError": "moot.errors",
    "Engine": "moot.engine",
    "EpisodeSpec": "moot.engine",
    "GenerateRequest": "moot.models.base",
    "GenerateResult": "moot.models.base",
    "Model": "moot.models.gateway",
    "ModelSeat": "moot.agents.model_seat",
    "Reply": "moot.agents.base",
    "Scenario": "moot.scenario.model",
    "Seat": "moot.agents.base",
    "Turn": "moot.agents.base",
    "View": "moot.agents.base",
    "fork": "moot.workflows.replay",
    "make_plan": "moot.workflows.plan",
    "rejudge_run": "moot.workflows.rejudge",  # not `rejudge`/`replay`: those are the modules' names
    "replay_run": "moot.workflows.replay",
    "load_scenario": "moot.scenario.load",
    "run_scenario": "moot.workflows.run",
}
__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name == "load_scenario":
        return import_module("moot.scenario.load").load_file
    if name in ("rejudge_run", "replay_run"):
        return getattr(import_module(_EXPORTS[name]), name.removesuffix("_run"))
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'moot' has no attribute {name!r}")
