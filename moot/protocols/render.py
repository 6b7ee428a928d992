"""A protocol graph as Mermaid (for READMEs and papers) or Graphviz DOT."""

from __future__ import annotations

import re

from moot.protocols.graph import END, Phase, Protocol

RULES = {"majority": "majority vote", "mean": "mean probability", "ranking": "ranking"}


def _label(data: dict) -> str:
    when = data.get("when", "always")
    if when == "always":
        return ""
    extra = ", ".join(f"{k}={v}" for k, v in data.items() if k != "when")
    return f"{when} ({extra})" if extra else when


def _id(name: str) -> str:
    # "end" is a keyword in Mermaid flowcharts: node ids get a prefix
    return "n_" + re.sub(r"\W", "_", name)


def _node_text(protocol: Protocol, node: str) -> str:
    if node == END:
        return "end"
    phase = protocol.graph.nodes[node]["phase"]
    seats = ", ".join(phase.seats)
    if phase.kind == "aggregate":
        return f"{node}: {RULES[phase.rule]}<br/>of {seats}"
    how = "together" if phase.simultaneous and len(phase.seats) > 1 else "in turn"
    form = f"<br/>reply: {phase.form.describe()}" if phase.form is not None else ""
    return f"{node}: {_kind(phase)}<br/>{seats}" + (f" ({how})" if len(phase.seats) > 1 else "") + form


def _kind(phase: Phase) -> str:
    """The phase's kind, with the parameters that change what it does."""
    if phase.best_of > 1:
        return f"{phase.kind}, best of {phase.best_of}"
    if phase.pairwise:
        return f"{phase.kind}, pairwise"
    return phase.kind


def mermaid(protocol: Protocol) -> str:
    lines = ["flowchart TD", f"    begin([start]) --> {_id(protocol.start)}"]
    for node in protocol.graph.nodes:
        text = _node_text(protocol, node).replace('"', "'")
        shape = f'(["{text}"])' if node == END else f'["{text}"]'
        lines.append(f"    {_id(node)}{shape}")
    for a, b, data in protocol.graph.edges(data=True):
        label = _label(data)
        arrow = f' -->|"{label}"| ' if label else " --> "
        lines.append(f"    {_id(a)}{arrow}{_id(b)}")
    return "\n".join(lines)


def dot(protocol: Protocol) -> str:
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph {q(protocol.name)} {{", "  rankdir=TB;", '  start [shape=point];']
    for node in protocol.graph.nodes:
        text = q(_node_text(protocol, node)).replace("<br/>", "\\n")  # DOT's line break
        shape = "doublecircle" if node == END else "box"
        lines.append(f"  {q(node)} [shape={shape}, label={text}];")
    lines.append(f"  start -> {q(protocol.start)};")
    for a, b, data in protocol.graph.edges(data=True):
        label = _label(data)
        attrs = f" [label={q(label)}]" if label else ""
        lines.append(f"  {q(a)} -> {q(b)}{attrs};")
    lines.append("}")
    return "\n".join(lines)
