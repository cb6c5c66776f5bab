"""`strangler playbook diff A B`: what changes between the system at step A and at step B.

A step is reviewed like a branch before it is applied: the processes that start or stop, the
services and routes that appear, move or go, who owns identity, the event subscriptions bound,
the data each half owns, and the backfills and gates that guard the move. Nothing is asked of a
running stack: it is the step files and the process table (`processes.py`), compared.

The system "at step N" is every step up to N fully applied: each route of steps 1..N served by
its service (`extracted`), each service of those steps running, every subscription bound. A
higher A than B reads as the way back (what a rollback of those steps gives up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .processes import processes_for
from .stepfile import Step

MONOLITH = "monolith"


@dataclass
class Snapshot:
    """The system at one step, as the diff compares it."""

    step: int
    processes: dict[str, str] = field(default_factory=dict)  # name -> command line
    services: dict[str, str] = field(default_factory=dict)  # name -> what it is
    routes: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (match, server)
    subscriptions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # queue -> events
    owners: dict[str, str] = field(default_factory=dict)  # data -> owning service
    identity: str = MONOLITH


def snapshot(steps: dict[int, Step], upto: int) -> Snapshot:
    """Return the system with every step up to `upto` applied."""
    shot = Snapshot(step=upto)
    for spec in processes_for(upto):
        shot.processes[spec.name] = " ".join(spec.argv)
    shot.routes["default"] = ("/", MONOLITH)
    for number, step in steps.items():
        if number > upto:
            continue
        for service in step.services:
            shot.services[service.name] = f"{service.settings} on :{service.port}" + (
                f", consumer {service.consumer}" if service.consumer else ""
            )
            for data in service.owns:
                shot.owners[data] = service.name
        for route in step.routes:
            shot.routes[route.name] = (route.prefix or route.path or "", route.service)
            if route.identity:
                shot.identity = route.service
        for sub in step.subscriptions:
            queue = f"{sub.consumer}.events"
            shot.subscriptions[queue] = tuple(
                dict.fromkeys([*shot.subscriptions.get(queue, ()), *sub.events])
            )
    return shot


@dataclass
class Change:
    """One line of the diff: `+` appears, `-` goes, `~` changes."""

    section: str
    sign: str
    name: str
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"section": self.section, "sign": self.sign, "name": self.name, "text": self.text}


def _keyed(section: str, before: dict, after: dict, show) -> list[Change]:
    changes = []
    for name in after:
        if name not in before:
            changes.append(Change(section, "+", name, show(after[name])))
        elif before[name] != after[name]:
            changes.append(
                Change(section, "~", name, f"{show(before[name])} -> {show(after[name])}")
            )
    for name in before:
        if name not in after:
            changes.append(Change(section, "-", name, show(before[name])))
    return changes


def steps_diff(steps: dict[int, Step], before: int, after: int) -> list[Change]:
    """Return every change from the system at step `before` to the one at step `after`."""
    for number in (before, after):
        if number not in steps:
            known = ", ".join(str(n) for n in steps)
            raise KeyError(f"unknown step {number}; the steps that exist are: {known}")
    a, b = snapshot(steps, before), snapshot(steps, after)
    changes: list[Change] = []
    changes += _keyed("processes", a.processes, b.processes, str)
    changes += _keyed("services", a.services, b.services, str)
    changes += _keyed("routes", a.routes, b.routes, lambda r: f"{r[0]} served by {r[1]}")
    if a.identity != b.identity:
        changes.append(Change("identity", "~", "owner", f"{a.identity} -> {b.identity}"))
    changes += _keyed(
        "subscriptions", a.subscriptions, b.subscriptions, lambda events: ", ".join(events)
    )
    data = {name: a.owners.get(name, MONOLITH) for name in a.owners | b.owners}
    data_after = {name: b.owners.get(name, MONOLITH) for name in a.owners | b.owners}
    changes += _keyed("data", data, data_after, str)
    moving = range(before + 1, after + 1) if after > before else range(after + 1, before + 1)
    for number in moving:
        step = steps[number]
        for job in step.backfill:
            sign = "+" if after > before else "-"
            changes.append(
                Change("backfill", sign, job.service, "manage.py " + " ".join(job.command))
            )
        if step.rollout:
            stages = " -> ".join(s.mode for s in step.rollout)
            gates = ", ".join(sorted(step.gates))
            text = f"{stages}, gated by {gates}"
            if after < before:
                text = "rolled back: routes to the monolith, then drain and reconcile"
            changes.append(Change("rollout", "~", f"step {number}", text))
    return changes


SECTIONS = ("processes", "services", "routes", "identity", "subscriptions", "data", "backfill",
            "rollout")  # fmt: skip
TITLES = {
    "processes": "processes (strangler up --step N)",
    "services": "services",
    "routes": "routes (once the step is applied)",
    "identity": "identity (who the proxy asks about a token)",
    "subscriptions": "subscriptions (queue: events)",
    "data": "data ownership (data: owner)",
    "backfill": "backfill (before the first stage)",
    "rollout": "rollout",
}


def diff_lines(changes: list[Change], before: int, after: int) -> list[str]:
    """Return the diff as the CLI prints it, grouped by section."""
    lines = [f"strangler playbook diff {before} {after}: {len(changes)} change(s)"]
    for section in SECTIONS:
        found = [c for c in changes if c.section == section]
        if not found:
            continue
        lines.append(f"{TITLES[section]}:")
        width = max(len(c.name) for c in found)
        lines += [f"  {c.sign} {c.name:<{width}}  {c.text}" for c in found]
    if not changes:
        lines.append("nothing changes")
    return lines
