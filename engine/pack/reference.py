"""docs/rules.md, the rules reference, rendered from the code that defines the rules.

Three sources, so the reference cannot drift: the rule-file schema (:mod:`engine.pack.schema`:
sections, fields, their descriptions and defaults), the function registry
(:data:`engine.dsl.functions.FUNCTIONS`: signature, units, rounding, nulls) and the examples
(:mod:`engine.pack.reference_examples`, loaded as packs by the tests). The explanatory
sections below (follow-ups, retention) describe what :mod:`engine.pipeline.state_ops` does
and quote its limits. ``tact rules docs --write docs/rules.md`` writes it; a test keeps the
committed copy current.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from engine.dsl.durations import format_duration
from engine.dsl.functions import FUNCTIONS, FunctionSpec
from engine.dsl.types import DECLARABLE
from engine.pack import schema as S
from engine.pack.model import PackSettings
from engine.pack.reference_examples import EXAMPLES
from engine.pipeline.state_ops import MAX_HISTORY

DOCS_FILE = "docs/rules.md"

# Schema aliases in plain words (compared by identity of the annotation object).
_ALIASES: list[tuple[object, str]] = [
    (S.Id, "name"),
    (S.Duration, "duration"),
    (S.Expr, "expression"),
    (S.ClockTime, "HH:MM"),
    (S.CalendarValue, "date or date and time"),
    (S.ConstantValue, "duration, number, text or true/false"),
    (S.FieldType, "type"),
    (S.ConsentNeed, "`required` or `none`"),
    (S.Choose, "`all`, `first`, `engaged`, {preferred: attribute} or {engaged: {within: "
     "duration}}"),
]
_PLAIN = {str: "text", int: "whole number", float: "number", bool: "true/false"}
_TYPE_WORDS = {
    "str": "text", "int": "whole number", "float": "number", "number": "int or float",
    "bool": "true/false", "time": "an instant, in epoch seconds", "list": "a list",
    "map": "a map", "any": "any value", "null": "no value",
}


def type_words(hint: Any) -> str:
    """A schema annotation in plain words: ``list[Id]`` is 'list of name'."""
    for alias, words in _ALIASES:
        if hint is alias:
            return words
    if hint in _PLAIN:
        return _PLAIN[hint]
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return f"{hint.__name__} (below)"
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(type_words(a) for a in args if a is not type(None))
    if origin is Literal:
        return " or ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {type_words(args[0])}"
    if origin is dict:
        return f"map of {type_words(args[0])} to {type_words(args[1])}"
    if origin is typing.Annotated:
        return type_words(args[0])
    return str(hint)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "empty"
    value = info.default
    if value is None or value == "":
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def model_table(model: type[BaseModel]) -> list[str]:
    hints = typing.get_type_hints(model, include_extras=True)
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        rows.append(
            f"| `{info.alias or name}` | {_cell(type_words(hints[name]))} | {_default(info)} "
            f"| {_cell(info.description or '')} |"
        )
    return rows


def _models_in(hint: Any) -> list[type[BaseModel]]:
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return [hint]
    return [m for a in get_args(hint) for m in _models_in(a)]


def section_names() -> list[str]:
    return list(S.RuleFile.model_fields)


def render_section(name: str, seen: set[type[BaseModel]]) -> list[str]:
    info = S.RuleFile.model_fields[name]
    hint = typing.get_type_hints(S.RuleFile, include_extras=True)[name]
    lines = [f"### `{name}`", "", f"{info.description or ''} Type: {type_words(hint)}.", ""]
    pending = _models_in(hint)
    while pending:  # the section's model, then every model first reached from it
        model = pending.pop(0)
        if model in seen:
            continue
        seen.add(model)
        doc = " ".join((model.__doc__ or "").split())
        title = f"**{model.__name__}**" + (f": {doc}" if doc else "")
        lines += [title, "", *model_table(model), ""]
        for sub in typing.get_type_hints(model, include_extras=True).values():
            pending.extend(_models_in(sub))
    example = EXAMPLES[name]
    lines += ["```yaml", example.yaml.rstrip("\n"), "```", ""]
    return lines


def signature(f: FunctionSpec) -> str:
    names = list(f.args)
    shown = [n if i < f.min_args else f"[{n}]" for i, n in enumerate(names)]
    if f.variadic:
        shown.append("...")
    return f"{f.name}({', '.join(shown)})"


def function_table() -> list[str]:
    rows = ["| call | gives | type | units | rounding | null and wrong types |",
            "|---|---|---|---|---|---|"]
    for f in sorted(FUNCTIONS.values(), key=lambda f: f.name):
        rows.append(
            f"| `{signature(f)}` | {_cell(f.doc)} | {f.returns} | {_cell(f.units) or '-'} "
            f"| {_cell(f.rounding) or '-'} | {_cell(f.nulls) or '-'} |"
        )
    return rows


_INTRO = """\
# Rules reference

Generated from the code by `tact rules docs --write docs/rules.md`: the rule-file schema
(`engine/pack/schema.py`), the function registry (`engine/dsl/functions.py`) and the examples
(`engine/pack/reference_examples.py`, each tested to load). Do not edit by hand. For a tour,
see "Writing rules" in the README; for the codes a decision gives, [reasons.md](reasons.md).

A pack is a directory of YAML files. Every file may hold any of the sections below and the
pack is their union; a name (an event, a message, a constant...) is defined once in the pack.
Names are lower case: letters, digits and `_`, starting with a letter. A duration is a number
and a unit, `ms s m h d w` (`30m`, `1h30m`, `7d`), or the name of a duration constant.

Contents: [Sections](#sections), [Functions](#functions),
[Follow-ups](#follow-ups-restart-not-stack), [Keys](#keys-one-instance-per-quote-order),
[Sets](#sets-members-that-expire-one-by-one),
[Maps](#maps-a-value-per-key-each-expiring-on-its-own),
[Retention](#retention-how-long-sent-messages-are-kept), [Reason codes](#reason-codes).

## Sections
"""

_FUNCTIONS_INTRO = """\
## Functions

Functions in expressions (`when:`, params, updates, policies). Times are instants in epoch
seconds, like `event.at` and `now`; `now` is the event's time (for a follow-up, the time it is
due), never the clock. No function raises: a value of the wrong type gives null (or false, or
0, as the table says); a bad constant argument is an error when the pack loads. `[x]` is
optional, `...` repeats. The weekday names `monday` to `sunday` stand for 0 to 6.
"""


def _types_line() -> str:
    return "Types: " + "; ".join(f"`{t}` {_TYPE_WORDS[t]}" for t in DECLARABLE) + "."


def _followups() -> str:
    return """\
## Follow-ups: restart, not stack

A rule with `after:` sends later, not now. What the engine does today
(`engine/pipeline/state_ops.py`, `schedule` and `cancel`):

- When a trigger event comes in and the rule's `when:` holds (inside its `active:` window),
  a follow-up is scheduled, due `after` from the event's time.
- **One pending follow-up per rule and customer. A new trigger restarts it.** If the rule
  fires again while its follow-up waits, the waiting one is replaced: due `after` from the
  new event, with the new event's data. They never stack: three `cart_updated` in ten
  minutes with `after: 30m` give one reminder, 30 minutes after the last update.
  Different rules keep their own follow-ups, independently.
- **`unless:` cancels.** Any event of a listed type cancels the waiting follow-up of that
  rule, whatever its data (a purchase of another order cancels a cart reminder too). It must
  be dated before the due time: a follow-up fires first if the unless-event is dated at or
  after it. An event that both cancels and triggers the same rule cancels, then schedules
  anew (a restart).
- **When it fires**, `when:` is not checked again; everything else is, at the due time:
  consent, policies, frequency caps, cooldown, quiet hours, holdout. `now` is the due time,
  params read the scheduling event's data and the customer's state at the due time.
  `relevance:` looks at the delay of the original event, not at `after`.
- A follow-up whose rule left the pack meanwhile sends nothing. Changing `after` does not
  move follow-ups already waiting.
- The worker fires due follow-ups on its timer (every `followup_interval_s`, 1 s by
  default); see [worker.md](worker.md#follow-ups). `tact explain` shows "follow-up scheduled"
  and "cancelled by".
- Follow-ups that one clock tick finds due are written in a defined order: due time, then
  customer, then rule. `tact simulate` and `tact replay` give the same lines in the same
  order on every run.
- With `key:`, the above holds per key: see [Keys](#keys-one-instance-per-quote-order).
"""


_KEYS = """\
## Keys: one instance per quote, order...

A customer has several quotes, orders or returns open at once. `key:` on a follow-up rule
or a context keeps one instance per value of an expression, usually an id in the event:

```yaml
contexts:
  pending_quote: {key: event.data.quote_id, ttl: 7d, start: [quote_requested], end: [quote_sent]}
rules:
  - {id: escalate_unsent_quote, on: quote_requested, after: 2h, key: event.data.quote_id,
     unless: [quote_sent], send: quote_escalation}
  - {id: quote_still_in_progress, on: quote_status_checked,
     when: 'context_active("pending_quote", event.data.quote_id)', send: quote_in_progress}
```

- **Follow-ups**: one pending per rule, customer and key. A trigger with another key adds a
  follow-up (they stack); the same key restarts it. An `unless:` event cancels only the
  follow-up whose key is the key expression read on that event; so the expression is checked
  at load against the trigger and every unless event (a field one of them lacks is an error).
- **Contexts**: each start and end event starts or ends its own instance; each instance has
  its own `ttl`. `context.pending_quote` is true while any instance is active (a policy on it
  holds until the last quote is sent); `context_active("pending_quote", key)` asks about one.
- A key is text or a whole number (`7` and `"7"` are the same key; a longer text than 200
  characters counts as none). A trigger without its key schedules nothing (a rule fault,
  counted); an unless event without it cancels every instance of the rule (in doubt,
  silence); a context start or end without it changes nothing. At most 64 instances per rule
  or context and customer: beyond, the one due or expiring first is dropped.
- **Counters and timestamps**: an update with `key:` keeps its `increment:`, `reset:` and
  `timestamp:` per key, e.g. the failed delivery attempts of each parcel. Read one key's with
  `counter("failed_deliveries", event.data.parcel)` (0 when never counted) and
  `timestamp("last_failed_delivery", event.data.parcel)` (null when never set, so
  `hours_since(...)` of it is null and a comparison with it false). The key is checked at
  load on every trigger of the update; an update with `key:` holds only `increment`, `reset`
  and `timestamp` (and `on`, `when`, `id`). `reset:` forgets that key's count.
  `customer.counters.<name>` reads the counter kept without a key, as before: a name kept
  only per key is an error there. At most 64 instances per counter or timestamp and
  customer: beyond, the one changed longest ago is dropped.

```yaml
updates:
  - {on: delivery_failed, key: event.data.parcel,
     increment: {failed_deliveries: 1}, timestamp: [last_failed_delivery]}
  - {on: parcel_delivered, key: event.data.parcel, reset: [failed_deliveries]}
rules:
  - {id: second_failed_delivery, on: delivery_failed, send: redelivery_options,
     when: 'counter("failed_deliveries", event.data.parcel) == 2'}
```

- In a scenario's starting state (`customers:`), a keyed context, counter or timestamp gives
  its instances, key -> value: `counters: {failed_deliveries: {P-7: 1}}`,
  `contexts: {pending_quote: {Q-5: 3d}}` (a name kept per key given one value, or the other
  way round, is an error at its place in the file).
"""


_SETS = """\
## Sets: members that expire one by one

A set (`sets:`) remembers text values per customer, each for `ttl` from when it was last
added: "the categories returned in the last 30 days". Updates change it on an event:
`add: {returned_categories: event.data.category}`, `remove: {...}` (a member, or a list of
them). In expressions `customer.sets.returned_categories` is the list of members not yet
expired at the event's time:

```yaml
policies:
  returned_category:
    when: event.data.category in customer.sets.returned_categories
    suppress: {messages: [category_sale]}
rules:
  - {id: many_returns, on: item_returned, send: returns_check_in,
     when: len(customer.sets.returned_categories) == 3}
```

- Shoes returned on 2 March and bags on 20 March: a shoe sale is held until 1 April, a bag
  sale until 19 April. Returning shoes again restarts their 30 days, not the bags'.
- Members are text (up to 200 characters; use `str(...)` for a number); other values are
  not added. A set holds at most `max` members (default 100, at most 1000): adding one more
  drops the oldest. Without `ttl` members stay until removed.
- Updates run before the rules of the same event, so a rule sees the member its event added.
  Expired members are dropped when the customer's next event is processed.
- An unknown set name is an error at load. For a value per member, see
  [Maps](#maps-a-value-per-key-each-expiring-on-its-own).
"""


_MAPS = """\
## Maps: a value per key, each expiring on its own

A map (`maps:`) remembers a value per key and customer, each entry for `ttl` from when it was
last put: "the price each product was last seen at, for 30 days". It declares the type of
its values (`str`, `int`, `float` or `bool`). Updates write it on an event,
`put: {map: last_viewed_price, key: event.data.sku, value: event.data.price}` (or a list of
such), and take keys out with `remove: {last_viewed_price: event.data.sku}` (a key, or a
list of keys, as a set's remove: takes). In expressions,
`customer.maps.last_viewed_price[event.data.sku]` is the value under that key
(null when absent or expired); `key in customer.maps.last_viewed_price` and
`len(customer.maps.last_viewed_price)` ask about the live entries:

```yaml
maps:
  last_viewed_price: {value: float, ttl: 30d, max: 50}
updates:
  - {on: product_page_viewed,
     put: {map: last_viewed_price, key: event.data.sku, value: event.data.price}}
rules:
  - id: viewed_item_cheaper
    on: product_repriced
    when: >-
      event.data.sku in customer.maps.last_viewed_price
      and event.data.price < customer.maps.last_viewed_price[event.data.sku]
    send: viewed_item_cheaper
```

- A lamp seen at 80 on 2 March and a rug at 200 on 20 March: a cut of the lamp to 70 is news
  until 1 April, the rug's until 19 April. Seeing the lamp again restarts its 30 days, with
  the price seen then.
- Keys are like [Keys](#keys-one-instance-per-quote-order)': text or a whole number (`7` and
  `"7"` are one key). Everything is checked at load: an unknown map (with a did-you-mean),
  a key that is neither on some trigger, a value of another type than the map's (a `float`
  map takes whole numbers too), a comparison of a value with something it can never equal.
- When the update runs, a key or value of the wrong type puts nothing; an event older than
  the entry does not overwrite it. A map holds at most `max` entries (default 100, at most
  1000): putting one more drops the oldest. Without `ttl` entries stay until removed.
- Updates run before the rules of the same event. Expired entries are dropped when the
  customer's next event is processed; a map the pack no longer declares is kept as it is.
"""


def _retention() -> str:
    default = format_duration(PackSettings().history_retention)
    return f"""\
## Retention: how long sent messages are kept

Every message sent is recorded in the customer's history (message, category, channel,
time). Cooldowns, frequency caps, `sent_count`, `category_sent_count` and `last_sent` read
that history, so they can only see as far back as it is kept. A message held out by its
rule's holdout is recorded too, marked held: cooldowns and caps count it (so the control
group is eligible at the same moments as the treated one), the three functions do not
(see docs/outcomes.md, "The virtual send").

- History is kept for `settings.history_retention`: {default} by default, raised by the
  loader to the pack's longest cooldown, frequency-cap window and `sent_count` /
  `category_sent_count` window. A 60-day cooldown therefore lasts 60 days.
- Writing `history_retention` shorter than one of those is an error at load that names what
  needs more. Shorter than {default} with nothing needing more is allowed.
- At most the {MAX_HISTORY} most recent sends per customer are kept, whatever the retention:
  a cap with `max` above {MAX_HISTORY} can never be reached.
- Old records are dropped when the customer's next event is processed. Shortening retention
  drops them for good; lengthening it later does not bring them back.
"""


_REASONS = """\
## Reason codes

Every suppressed decision lists why (`cooldown`, `frequency_cap`, a policy's id...), and every
event refused says why it went to the dead-letter topic. Each code, with what triggers it and
what to do: [reasons.md](reasons.md).
"""


def render() -> str:
    seen: set[type[BaseModel]] = set()
    lines = [_INTRO]
    for name in section_names():
        lines += render_section(name, seen)
    lines += [_FUNCTIONS_INTRO, _types_line(), "", *function_table(), ""]
    lines += [_followups(), _KEYS, _SETS, _MAPS, _retention(), _REASONS]
    return "\n".join(lines).rstrip("\n") + "\n"
