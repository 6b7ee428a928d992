"""The engine: the walk (`core.Engine`), one handler per kind of phase (`phases`), and the
episode each walk owns (`episode`). It reads seats, protocols and models, and speaks only
to the bus: never to the store, the workflows, the TUI or the CLI (import-linter checks)."""

from moot.agents.base import EpisodeFailed
from moot.engine.core import Engine
from moot.engine.episode import Episode, EpisodeSpec

__all__ = ["Engine", "Episode", "EpisodeFailed", "EpisodeSpec"]
