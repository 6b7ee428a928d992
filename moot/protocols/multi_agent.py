"""Multi-agent debate (Du et al. 2023, "Improving Factuality and Reasoning in Language Models
through Multiagent Debate"): N agents answer, then for R rounds each reads the others'
previous answers and answers again; the final answer is the majority of the last round, or
a judge's ruling on the whole exchange.

    answers --(rounds_left)--> answers
    answers --(rounds_done)--> majority | verdict --> end

Every agent's answer in every round is stored as a verdict of its own (keyed by agent), so
analysis can follow how agents converge; the majority is stored as the verdict of
"majority".
"""

from __future__ import annotations

import networkx as nx

from moot.protocols.graph import END, Phase, Protocol, SeatSpec, Terms


def agent_ids(agents: int) -> tuple[str, ...]:
    return tuple(f"agent_{i}" for i in range(1, agents + 1))


def build(agents: int, rounds: int, *, final: str = "majority", until_agreed: bool = False) -> Protocol:
    ids = agent_ids(agents)
    seats = [SeatSpec(a, "agent") for a in ids]
    g = nx.DiGraph()
    g.add_node("answers", phase=Phase("answers", "verdict", ids, simultaneous=True))
    g.add_node(END)
    # with until_agreed, a round in which every agent names the same answer ends the debate
    g.add_edge("answers", "answers", when="disagree_rounds_left" if until_agreed else "rounds_left")
    if final == "judge":
        seats.append(SeatSpec("judge", "judge", sees_source=False))
        g.add_node("verdict", phase=Phase("verdict", "verdict", ("judge",)))
        g.add_edge("answers", "verdict")
        g.add_edge("verdict", END)
    else:
        g.add_node("majority", phase=Phase("majority", "aggregate", ids))
        g.add_edge("answers", "majority")
        g.add_edge("majority", END)
    return Protocol("multi_agent", tuple(seats), g, start="answers", terms=Terms(rounds))
