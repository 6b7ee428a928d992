"""What a seat carries from one episode to the next (AgentCourt's lawyers, who improve over a
thousand cases by keeping what they learned).

Two kinds, chosen per seat in the scenario:

- `lessons`: after each episode the seat is told the result and writes one lesson; the
  last `size` lessons are shown to it in every later turn.
- `cases`: after each episode the case itself (question, the side argued, the result) is
  kept, and the `size` past cases most like the current question (shared words) are shown.

Entries live in the run database (`memories`), with the episode that wrote each, so a run
shows how a seat's record changes over time and a later run can start from a saved memory.
Episodes that share a memory must run in a defined order: the engine runs them one at a
time, in episode order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("the a an of to in on for and or is was were be by with that this it as at from who what which did does".split())

REFLECT_TURN = (
    "The case is over.\nQuestion: {question}\n{answers}\n"
    "You argued for {side_label}: {side_answer}. The judge ruled {result}.\n"
    "Write one lesson, in under 40 words, that will help you in future cases."
)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


@dataclass(slots=True)
class Memory:
    kind: Literal["lessons", "cases"]
    size: int
    entries: list[tuple[str, str]] = field(default_factory=list)  # (question, content)

    def recall(self, question: str) -> list[str]:
        if not self.entries:
            return []
        if self.kind == "lessons":
            return [content for _, content in self.entries[-self.size :]]
        words = _words(question)
        ranked = sorted(
            range(len(self.entries)),
            key=lambda i: (len(words & _words(self.entries[i][0])), i),
            reverse=True,
        )
        return [self.entries[i][1] for i in sorted(ranked[: self.size])]

    def block(self, question: str) -> str:
        recalled = self.recall(question)
        if not recalled:
            return ""
        title = "Lessons from your earlier cases" if self.kind == "lessons" else "Earlier cases like this one"
        return f"\n\n{title}:\n" + "\n".join(f"- {r}" for r in recalled)

    def add(self, question: str, content: str) -> None:
        self.entries.append((question, content))
