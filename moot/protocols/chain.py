"""Generator, verifier, refiner (MALT, Motwani et al. 2024: sequential roles over a task
with a checkable answer): the generator solves, the verifier checks the solution and says
what is wrong, the refiner writes the final solution from both; the engine scores the
refiner's final number against the task's target, so every trajectory is marked correct or
not. With `rounds: R` the verifier and refiner go R times (each refinement is verified
again).

    generate -> verify -> refine --(rounds_left)--> verify
                          refine --(rounds_done)--> score -> end

The refiner's reply has a declared form (`ANSWER_FORM`: an "Answer: N" line first), so even a
small model's final number is readable. The task's answer is never shown to a seat: it
stays with the scorer.
"""

from __future__ import annotations

import networkx as nx

from moot.models.forms import Form
from moot.protocols.graph import END, Phase, Protocol, SeatSpec, Terms

# The refiner's final solution: its number first, on an "Answer:" line the scorer reads
# (`moot.protocols.rules.final_number`), then its working on the lines after
ANSWER_FORM = Form.of_pattern(r"Answer: -?[0-9]+(\.[0-9]+)?(\n[^\n]*)*")


def build(rounds: int) -> Protocol:
    seats = (
        SeatSpec("generator", "generator"),
        SeatSpec("verifier", "verifier"),
        SeatSpec("refiner", "refiner"),
    )
    g = nx.DiGraph()
    g.add_node("generate", phase=Phase("generate", "speech", ("generator",)))
    g.add_node("verify", phase=Phase("verify", "review", ("verifier",)))
    g.add_node("refine", phase=Phase("refine", "speech", ("refiner",), form=ANSWER_FORM))
    g.add_node("score", phase=Phase("score", "score", ("refiner",)))
    g.add_node(END)
    g.add_edge("generate", "verify")
    g.add_edge("verify", "refine")
    g.add_edge("refine", "verify", when="rounds_left", of="refine")
    g.add_edge("refine", "score", when="rounds_done", of="refine")
    g.add_edge("score", END)
    return Protocol("chain", seats, g, start="generate", terms=Terms(rounds))
