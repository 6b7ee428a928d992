"""The peers' side: each framework in its own cached venv, running ../shared/peers scripts.

Venvs live in $MOOT_BENCH_CACHE (default ~/.cache/moot-bench; made when missing) and are
reused between runs; the peers' versions are pinned and reported with the figures.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = Path(os.environ.get("MOOT_PEERS", ROOT.parent / "shared" / "peers"))
CACHE = Path(os.environ.get("MOOT_BENCH_CACHE", Path.home() / ".cache" / "moot-bench"))

# Pinned: ratios measured on different days must measure the same code. Bump on purpose,
# and say so beside the figures (each venv is rebuilt when its pins change).
PACKAGES = {
    "autogen": ["autogen-agentchat==0.7.5", "autogen-ext==0.7.5"],
    "inspect": ["inspect-ai==0.3.285"],
    # langchain-core 1.8.4 needs a langchain-protocol the registry lacks: 1.8.3 is what resolves
    "langgraph": ["langgraph==1.2.24", "langgraph-checkpoint-sqlite==3.1.2", "aiosqlite==0.22.1",
                  "langchain-core==1.8.3"],
}  # fmt: skip
VERSION_OF = {"autogen": "autogen-agentchat", "inspect": "inspect_ai", "langgraph": "langgraph"}


@dataclass(frozen=True)
class Peer:
    label: str
    venv: str | None  # None: runs on moot's own interpreter (the stdlib-only floor)
    script: str
    args: tuple[str, ...]  # "{n}" is replaced by the episode count
    quick_n: int | None = None  # a smaller size for --quick (a peer whose rate is flat in n)


PEERS = [
    Peer("bare asyncio floor (--persist)", None, "floor_asyncio.py", ("-n", "{n}", "--persist")),
    # --quick runs the slow peers smaller (their rates are flat in n) to stay under two minutes
    Peer("AutoGen AgentChat (no persistence)", "autogen", "autogen_debate.py", ("{n}",), quick_n=500),
    Peer("Inspect AI (with its log)", "inspect", "inspect_debate.py", ("{n}",), quick_n=50),
    Peer("LangGraph, plain fn (no persistence)", "langgraph", "langgraph_debate.py",
         ("--mode", "none", "--model", "plain", "-n", "{n}")),
    Peer("LangGraph, fake model (no persistence)", "langgraph", "langgraph_debate.py",
         ("--mode", "none", "--model", "fakelist", "-n", "{n}"), quick_n=500),
    Peer("LangGraph + SQLite checkpointer", "langgraph", "langgraph_debate.py",
         ("--mode", "sqlite", "--model", "fakelist", "-n", "{n}"), quick_n=500),
]  # fmt: skip


def python_for(venv: str | None) -> str:
    if venv is None:
        return sys.executable
    path = CACHE / "venvs" / venv
    python = path / "bin" / "python"
    marker = path / ".installed"
    pins = "\n".join(PACKAGES[venv]) + "\n"
    if not marker.exists() or marker.read_text() != pins:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             *PACKAGES[venv]],
            check=True,
        )  # fmt: skip
        marker.write_text(pins)
    return str(python)


def version(venv: str) -> str:
    out = subprocess.run(
        [python_for(venv), "-m", "pip", "show", VERSION_OF[venv]],
        capture_output=True, text=True,
    )  # fmt: skip
    m = re.search(r"^Version: (.+)$", out.stdout, re.M)
    return m.group(1) if m else "?"


def run(peer: Peer, n: int, timeout: float = 900) -> dict:
    """Run one peer script; its calls/s from its JSON line or its key=value line."""
    args = [a.replace("{n}", str(n)) for a in peer.args]
    CACHE.mkdir(parents=True, exist_ok=True)  # the peers' working directory, even on a new machine
    try:
        python = python_for(peer.venv)
    except subprocess.CalledProcessError:  # one peer that cannot install must not end the bench
        return {"peer": peer.label, "error": f"could not install {' '.join(PACKAGES[peer.venv or ''])}"}
    proc = subprocess.run(
        [python, str(PEERS_DIR / peer.script), *args],
        capture_output=True, text=True, timeout=timeout, cwd=CACHE,
    )  # fmt: skip
    if proc.returncode != 0:
        return {"peer": peer.label, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            data = json.loads(line)
            return {"peer": peer.label, "calls_per_s": float(data["calls_per_s"])}
        m = re.search(r"calls_per_s=([\d.]+)", line)
        if m:
            return {"peer": peer.label, "calls_per_s": float(m.group(1))}
    return {"peer": peer.label, "error": "no calls_per_s in its output"}
