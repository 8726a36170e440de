"""The field types rule files share (ids, durations, expressions, dates) and the base model."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Duration = Annotated[
    str | int | float,
    Field(
        description="A duration such as '30m', '12h', '7d' (or seconds as a number), or the "
        "name of a duration constant."
    ),
]
ConsentNeed = Literal["required", "none"]
ConstantValue = Annotated[
    str | int | float | bool,
    Field(description="A duration ('4h'), a number, a string or true/false."),
]
Expr = Annotated[str, Field(description="An expression in Tact's expression language.")]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
# A YAML date (2026-11-27) or timestamp arrives as a date/datetime; anything else as text.
CalendarValue = Annotated[
    datetime | date | str,
    Field(description="A date (2026-11-27) or a date and time (2026-11-27T09:00, with an "
          "optional offset such as +01:00)."),
]
MapValue = Literal["str", "int", "float", "bool"]
FieldType = Literal["str", "int", "float", "number", "bool", "time", "list", "map", "any"]


class StrictModel(BaseModel):
    """A section of a rule file: an unknown key is an error (a typo is never ignored)."""

    model_config = ConfigDict(extra="forbid")
