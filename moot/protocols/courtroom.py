"""Courtroom (as in AgentCourt and the legal-debate simulations it follows): a plaintiff's
lawyer and a defence lawyer argue a case before a judge who sees only what is presented in
court; a witness, who has read the case file, answers each lawyer's question.

    opening -> [question_plaintiff -> testimony_plaintiff -> question_defence
                -> testimony_defence] -> rebuttal -> closing -> ruling -> end

The case file is the source: the lawyers and the witness read it, the judge does not. The
two answers are the parties (plaintiff first); the ruling names the winner, then a reason.
"""

from __future__ import annotations

import networkx as nx

from moot.protocols.graph import END, Phase, Protocol, SeatSpec

LAWYERS = ("plaintiff_lawyer", "defence_lawyer")


def build(*, witness: bool = True) -> Protocol:
    seats = [
        SeatSpec("plaintiff_lawyer", "lawyer", side=0),
        SeatSpec("defence_lawyer", "lawyer", side=1),
        SeatSpec("judge", "judge", sees_source=False),
    ]
    stages: list[Phase] = [Phase("opening", "speech", LAWYERS)]
    if witness:
        seats.append(SeatSpec("witness", "witness"))
        for lawyer, party in (("plaintiff_lawyer", "plaintiff"), ("defence_lawyer", "defence")):
            stages.append(Phase(f"question_{party}", "question", (lawyer,)))
            stages.append(Phase(f"testimony_{party}", "speech", ("witness",)))
    stages += [
        Phase("rebuttal", "speech", LAWYERS),
        Phase("closing", "speech", LAWYERS),
        Phase("ruling", "verdict", ("judge",)),
    ]
    g = nx.DiGraph()
    for phase in stages:
        g.add_node(phase.name, phase=phase)
    g.add_node(END)
    for a, b in zip([p.name for p in stages], [p.name for p in stages[1:]] + [END]):
        g.add_edge(a, b)
    return Protocol("courtroom", tuple(seats), g, start="opening")
