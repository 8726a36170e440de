"""Customers' starting states, checked against the pack they run with.

A name the pack does not know (a context, a window, a counter, a channel) would be stored
and never read: the scenario would pass or fail for a reason nobody wrote down. So it is
an error, placed at the name in the file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.models.seed import CustomerSeed, SeedError
from engine.models.state import CustomerState
from engine.pack.model import RulePack
from engine.pack.source import Path_, SourceFile
from engine.pipeline.maps import fits
from engine.scenarios.source import customers_of, read_yaml, seed_problem


@dataclass
class StartingState:
    """Customers as a scenario's ``customers:`` gives them, and where they were written."""

    customers: dict[str, CustomerSeed]
    source: SourceFile | None = None
    base: Path_ = ()  # where the customers mapping sits in ``source``

    def states(self, pack: RulePack, start: float | None) -> list[CustomerState]:
        """Every customer's starting state; relative times count from ``start``. Raises
        :class:`~engine.errors.ScenarioError` at the offending place in the file."""
        categories = {m.id: m.category for m in pack.messages.values()}
        out: list[CustomerState] = []
        for cid, seed in self.customers.items():
            try:
                _check_names(pack, seed)
                _check_sets_and_maps(pack, seed)
                state = seed.to_state(cid, start=start, categories=categories)
            except SeedError as exc:
                raise seed_problem(self.source, self.base, cid, exc) from None
            for name, entries in state.maps.items():
                if pack.maps[name].value == "float":  # as put: keeps it: 3 is 3.0
                    for entry in entries.values():
                        entry[0] = float(entry[0])
            out.append(state)
        return out


def load_state_file(path: str | Path) -> StartingState:
    """A ``--state`` file: YAML or JSON, customer id -> the fields of a scenario customer."""
    src = read_yaml(path)
    return StartingState(customers_of(src, src.data, ()), src, ())


def _check_names(pack: RulePack, seed: CustomerSeed) -> None:
    contexts = frozenset(pack.contexts)
    _keyed("context", seed.contexts, contexts - pack.keyed_contexts, pack.keyed_contexts)
    _known("window", seed.windows, pack.windows, "windows")
    _keyed("counter", seed.counters, pack.counters, pack.keyed_counters)
    _keyed("timestamp", seed.timestamps, pack.timestamps, pack.keyed_timestamps)
    for i, h in enumerate(seed.history):
        if h.channel not in pack.channels:
            raise SeedError(("history", i, "channel"),
                            f"history: channel {h.channel!r} is not in the pack "
                            f"(channels: {', '.join(sorted(pack.channels))})")


def _keyed(what: str, given: Mapping[str, object], plain: Collection[str],
           keyed: Collection[str]) -> None:
    """Names given one value must be kept unkeyed by the pack; those given instances
    (key -> value), kept per key."""
    section = what + "s"
    _known(what, [n for n, v in given.items() if not isinstance(v, dict) and n not in keyed],
           plain, section)
    for name, v in given.items():
        if isinstance(v, dict) and name not in keyed:
            if name in plain:
                raise SeedError((section, name), f"{section}: the {what} {name!r} has no key "
                                f"in the pack: give it one value, not instances")
            _known(what, [name], keyed, section)
        elif not isinstance(v, dict) and name in keyed and name not in plain:
            raise SeedError((section, name), f"{section}: the {what} {name!r} is kept per key "
                            "in the pack: give its instances, key: value")


def _known(what: str, names: Iterable[str], known: Collection[str], section: str) -> None:
    for name in names:
        if name not in known:
            have = ", ".join(sorted(known)) or "none"
            raise SeedError((section, name, "__key__"),
                            f"{section}: no {what} {name!r} in the pack (it has: {have})")


def _check_sets_and_maps(pack: RulePack, seed: CustomerSeed) -> None:
    """Sets and maps the pack declares, no more members or entries than it keeps, and each
    map value of the map's type (one of another type would never be put)."""
    _known("set", seed.sets, pack.sets, "sets")
    _known("map", seed.maps, pack.maps, "maps")
    for name, members in seed.sets.items():
        _at_most("sets", name, len(members), pack.sets[name].max)
    for name, entries in seed.maps.items():
        spec = pack.maps[name]
        _at_most("maps", name, len(entries), spec.max)
        for key, entry in entries.items():
            if not fits(entry.value, spec.value):
                raise SeedError(("maps", name, key, "value"), f"maps: {name!r} holds "
                                f"{spec.value} values, not {entry.value!r}")


def _at_most(section: str, name: str, count: int, most: int) -> None:
    if count > most:
        raise SeedError((section, name), f"{section}: {name!r} keeps at most {most}, "
                        f"{count} given")
