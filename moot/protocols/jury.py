"""LLMs-as-a-Jury: a panel of judges in the judge's seat of any protocol.

Following "The Fellowship of the LLMs" (LLM-as-a-Judge vs LLMs-as-a-Jury vs LLM Debate) and
Verga et al. 2024 ("Replacing Judges with Juries"): k jurors, possibly different models, each
rule in the judge's own view (blind where the judge is blind) without seeing one another,
and the panel's verdict is combined from theirs:

    ... -> jury (k jurors at once, hidden from each other)
        [-> deliberation_1 ... deliberation_d: each juror reads the others' last verdicts
            and rules again]
        -> majority | mean | foreperson -> end

`majority` is a plurality vote (a tie rules nothing), `mean` averages the jurors'
probabilities (jurors with no readable probabilities are left out), `foreperson` has juror 1
read the panel's verdicts and rule for it. Every juror's verdict is stored (judge
`juror_i`); the panel's is the episode's ruling (judge `majority`, `mean` or `juror_1` in the
foreperson phase).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from moot.protocols.graph import END, Phase, Protocol

if TYPE_CHECKING:
    from moot.scenario.model import JuryConfig


def juror_ids(size: int) -> tuple[str, ...]:
    return tuple(f"juror_{i}" for i in range(1, size + 1))


def apply(protocol: Protocol, jury: JuryConfig) -> Protocol:
    """The protocol with its judge replaced by a jury. Only a judge that rules once, at the
    end, can be replaced: a judge that questions the debaters or rules every round is one
    person in a conversation, not a panel."""
    g = protocol.graph
    judge_phases = [n for n, d in g.nodes(data=True) if n != END and "judge" in d["phase"].seats]
    final = [n for n in judge_phases if g.nodes[n]["phase"].kind == "verdict"]
    if len(final) != 1 or len(judge_phases) != 1 or list(g.successors(final[0])) != [END]:
        raise ValueError(
            f"jury: the {protocol.name} protocol's judge does more than rule once at the end "
            "(questions, interim verdicts); a jury replaces a judge that only rules"
        )
    verdict = final[0]
    judge = next(s for s in protocol.seats if s.id == "judge")
    jurors = juror_ids(jury.size)
    # the panel's own deliberations are for the panel: debaters never read them
    panel = frozenset(jurors)
    g = g.copy()
    g.remove_edge(verdict, END)
    g.nodes[verdict]["phase"] = Phase(verdict, "verdict", jurors, simultaneous=True, audience=panel)
    last = verdict
    for i in range(1, jury.deliberation + 1):
        name = f"deliberation_{i}"
        g.add_node(name, phase=Phase(name, "verdict", jurors, simultaneous=True, audience=panel))
        g.add_edge(last, name)
        last = name
    if jury.aggregate == "foreperson":
        g.add_node("foreperson", phase=Phase("foreperson", "verdict", jurors[:1], audience=panel))
        closing = "foreperson"
    else:
        g.add_node(jury.aggregate, phase=Phase(jury.aggregate, "aggregate", jurors, rule=jury.aggregate))
        closing = jury.aggregate
    g.add_edge(last, closing)
    g.add_edge(closing, END)
    seats = tuple(s for s in protocol.seats if s.id != "judge") + tuple(
        replace(judge, id=j) for j in jurors
    )
    return replace(protocol, seats=seats, graph=g)
