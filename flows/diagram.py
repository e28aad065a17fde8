"""The conversation as a Mermaid state diagram, drawn by transitions' own GraphMachine."""
from __future__ import annotations

from transitions.extensions import GraphMachine

from .engine import machine_transitions
from .spec import Flow

ANY = "from_any_state"


def mermaid(flow: Flow) -> str:
    """Global commands are drawn once, from a pseudo-state, rather than from every state."""
    transitions = [
        {**t, "source": ANY if t["source"] == "*" else t["source"], "trigger": t["trigger"].split(".")[-1]}
        for t in machine_transitions(flow)
    ]
    machine = GraphMachine(
        states=[*flow.states, ANY],
        transitions=transitions,
        initial=flow.initial,
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title=flow.name,
    )
    return machine.get_graph().draw(None)
