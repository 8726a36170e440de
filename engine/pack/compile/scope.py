"""What an expression may name where it stands: the Scope for a set of trigger events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from engine.dsl.types import Scope, join
from engine.pack.compile.catalog import Catalog
from engine.pack.constants import PackConstant, expression_scope


@dataclass(frozen=True, slots=True)
class StateNames:
    """The per-customer state the updates keep."""

    counters: frozenset[str]
    windows: dict[str, float]  # counted-in-window name -> its longest window (seconds)
    timestamps: frozenset[str]
    keyed_counters: frozenset[str] = frozenset()  # incremented or reset with a key:
    keyed_timestamps: frozenset[str] = frozenset()  # set with a key:


@dataclass(frozen=True, slots=True)
class Scopes:
    catalog: Catalog
    state: StateNames
    contexts: frozenset[str]
    timezone_attribute: str
    constants: dict[str, PackConstant]
    keyed_contexts: frozenset[str] = frozenset()
    sets: frozenset[str] = frozenset()
    maps: Mapping[str, str] = field(default_factory=dict)  # map -> its value type

    def for_triggers(self, triggers: Iterable[str] | None) -> Scope:
        """The scope of an expression run on these event types (None: on no one type, so
        the event's data is unknown); its data is the fields all triggers share."""
        events = self.catalog.events
        data: dict[str, str] | None
        if triggers is None or not events:
            data = None
        else:
            schemas = [events.get(t) for t in triggers]
            if any(s is None for s in schemas):
                data = None
            else:
                fields = [s for s in schemas if s is not None]
                data = dict(fields[0]) if fields else {}
                for other in fields[1:]:
                    data = {k: join(t, other[k]) for k, t in data.items() if k in other}
        attrs = dict(self.catalog.attributes)
        attrs.setdefault(self.timezone_attribute, "str")
        return Scope(
            event_data=data,
            attributes=attrs,
            counters=self.state.counters,
            windows=frozenset(self.state.windows),
            timestamps=self.state.timestamps,
            contexts=self.contexts,
            keyed_contexts=self.keyed_contexts,
            sets=self.sets,
            maps=self.maps,
            keyed_counters=self.state.keyed_counters,
            keyed_timestamps=self.state.keyed_timestamps,
            channels=self.catalog.channels,
            constants=expression_scope(self.constants),
        )
