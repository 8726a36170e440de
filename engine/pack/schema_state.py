"""The rule-file sections about the customer's state: contexts, updates, sets and maps."""

from __future__ import annotations

from pydantic import Field

from engine.pack.schema_types import Duration, Expr, Id, MapValue, StrictModel

__all__ = ["Context", "MapDecl", "MapPut", "SetDecl", "Trigger", "Update"]


class Trigger(StrictModel):
    """Event type(s), with a condition, that start or end a context."""

    on: Id | list[Id] = Field(description="Event type(s).")
    when: Expr | None = Field(None, description="Only when this condition holds.")


class Context(StrictModel):
    """A named situation in the customer's life, on from a start event until an end or ttl."""

    description: str = Field("", description="What the situation is, for people.")
    ttl: Duration | None = Field(None, description="How long the context lasts once started.")
    start: list[Id | Trigger] = Field(description="Events (with conditions) that start it.")
    end: list[Id | Trigger] = Field(default_factory=list, description="Events that end it.")
    key: Expr | None = Field(
        None, description="One instance per value of this expression (e.g. "
        "event.data.quote_id), read on every start and end event: an end ends only its own "
        "instance; context.<name> is true while any instance is active; "
        "context_active(name, key) asks about one.",
    )


class Update(StrictModel):
    """A state update applied when an event arrives, before rules are evaluated."""

    id: Id | None = Field(None, description="A name, for error messages and explain.")
    on: Id | list[Id] = Field(description="Event type(s) that apply it.")
    when: Expr | None = Field(None, description="Only when this condition holds.")
    set: dict[Id, Expr | int | float | bool] = Field(
        default_factory=dict, description="Attributes to set from expressions."
    )
    increment: dict[Id, Expr | int | float] = Field(
        default_factory=dict, description="Counters to add to."
    )
    reset: list[Id] = Field(default_factory=list, description="Counters to set to zero.")
    count_in_window: dict[Id, Duration] = Field(
        default_factory=dict, description="Windowed counts: name -> window length."
    )
    timestamp: list[Id] = Field(
        default_factory=list, description="Timestamps to set to the event's time."
    )
    key: Expr | None = Field(
        None, description="Keyed counters and timestamps: increment, reset and timestamp "
        "apply to this key's instance only (e.g. event.data.order), read on every trigger; "
        "read one with counter(name, key) or timestamp(name, key).",
    )
    merge_attributes: Expr | None = Field(None, description="A map merged into attributes.")
    merge_consent: Expr | None = Field(None, description="A map of channel -> bool merged.")
    add: dict[Id, Expr] = Field(
        default_factory=dict,
        description="Sets to add to: set -> the member (text), or a list of members; "
        "adding a member again restarts its ttl.",
    )
    remove: dict[Id, Expr] = Field(
        default_factory=dict,
        description="Sets to remove from: set -> the member(s); maps: map -> the key, or a "
        "list of keys.",
    )
    put: MapPut | list[MapPut] = Field(
        default_factory=list,
        description="Maps to write: the value under the key; putting a key again restarts "
        "its ttl.",
    )


class MapPut(StrictModel):
    """One value written into a map, under a key."""

    map: Id = Field(description="The map (declared under maps:).")
    key: Expr = Field(description="The key: text or a whole number, e.g. event.data.sku.")
    value: Expr = Field(description="The value, of the map's declared type.")


class MapDecl(StrictModel):
    """A map of keys to values kept per customer, each entry expiring on its own (e.g. the
    price each product was last seen at): customer.maps.<name>[key] in expressions."""

    description: str = Field("", description="What the map holds, for people.")
    value: MapValue = Field(description="The type of its values.")
    ttl: Duration | None = Field(
        None, description="How long an entry stays after it was last put (event time); "
        "default: until removed."
    )
    max: int = Field(
        100, ge=1, le=1000, description="Most entries kept; beyond it the oldest goes."
    )


class SetDecl(StrictModel):
    """A set of text members kept per customer, each expiring on its own (e.g. the
    categories returned in the last 30 days): customer.sets.<name> in expressions."""

    description: str = Field("", description="What the set holds, for people.")
    ttl: Duration | None = Field(
        None, description="How long a member stays after it was last added (event time); "
        "default: until removed."
    )
    max: int = Field(
        100, ge=1, le=1000, description="Most members kept; beyond it the oldest goes."
    )
