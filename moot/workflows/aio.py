"""How moot runs an event loop: anyio on asyncio, on uvloop where it is installed.

uvloop's timers, handles and sockets are C: with 10,000 episodes in flight it took ~2 us off
every model call and steadied the run's pace (bench/). It is a dependency where it has wheels
(not on Windows); elsewhere asyncio's own loop runs the same code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.util import find_spec
from typing import Any, TypeVar

import anyio

T = TypeVar("T")

USE_UVLOOP = find_spec("uvloop") is not None


def run(func: Callable[..., Awaitable[T]], *args: Any) -> T:
    return anyio.run(func, *args, backend_options={"use_uvloop": USE_UVLOOP})
