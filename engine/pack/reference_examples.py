"""The YAML examples of docs/rules.md, one per section of a rule file.

Each example shows its section alone; ``setup`` declares what it refers to (channels,
events, messages) and is not shown. The unit tests load every example with its setup as
a pack, so an example in the reference cannot drift from what the loader accepts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Example:
    yaml: str  # shown in the reference
    setup: str = ""  # declarations the example needs, loaded with it, not shown


_CHANNELS = "channels: [push, email, sms, webhook]\ncategories: [service, promotion, internal]\n"
_EVENTS = """\
events:
  app_open: {}
  cart_updated: {data: {items: int, value: number}}
  purchase: {data: {order: str, value: number}}
"""
_TRAVEL = """\
events:
  boarding_pass_scanned: {data: {flight: str}}
  trip_completed: {}
  flight_cancelled: {data: {rebooked: bool}}
"""
_QUOTES = """\
events:
  quote_requested: {data: {quote_id: str}}
  quote_sent: {data: {quote_id: str}}
"""

EXAMPLES: dict[str, Example] = {
    "pack": Example("pack: travel-journeys\n"),
    "settings": Example(
        """\
settings:
  timezone_attribute: tz          # the attribute holding the customer's zone
  dedupe_window: 7d               # an event id seen again within 7 days is ignored
  max_per_event_per_channel: 1
  history_retention: 60d          # keep sent messages at least 60 days
""",
        "attributes: {tz: str}\n",
    ),
    "channels": Example("channels: [push, email, sms, webhook]\n"),
    "categories": Example("categories: [service, promotion, loyalty, internal]\n"),
    "constants": Example(
        """\
constants:
  sla: 4h                   # a duration: 'after: sla', or const.sla (seconds) in expressions
  points_warning_days: 7    # a number: const.points_warning_days
  brand: Acme Travel        # text
""",
    ),
    "consent": Example(
        """\
consent:
  channels: {webhook: none}        # the support desk's webhook does not reach the customer
  categories: {service: required}  # the default, written out
""",
        _CHANNELS,
    ),
    "events": Example(
        """\
events:
  app_open: {description: The customer opened the mobile app.}
  cart_updated:
    data: {items: int, value: number}
  profile_updated:
    data: {attributes: map, consent: map}
""",
    ),
    "attributes": Example("attributes: {segment: str, tz: str, points_expiring_days: int}\n"),
    "updates": Example(
        """\
updates:
  - id: remember_cart
    on: cart_updated
    set: {cart_value: event.data.value}
    increment: {carts_started: 1}
    timestamp: [last_cart]
  - on: purchase
    reset: [carts_started]
    count_in_window: {purchases_30d: 30d}
  - on: item_returned             # customer.sets.returned_categories (see sets:)
    add: {returned_categories: event.data.category}
  - on: return_withdrawn
    remove: {returned_categories: event.data.category}
  - on: delivery_failed           # one count and one time per parcel (see Keys)
    key: event.data.parcel
    increment: {failed_deliveries: 1}
    timestamp: [last_failed_delivery]
  - on: product_page_viewed       # customer.maps.last_viewed_price (see maps:)
    put: {map: last_viewed_price, key: event.data.sku, value: event.data.price}
""",
        _EVENTS + "  item_returned: {data: {category: str}}\n"
        "  return_withdrawn: {data: {category: str}}\n"
        "  delivery_failed: {data: {parcel: str}}\n"
        "  product_page_viewed: {data: {sku: str, price: number}}\n"
        "attributes: {cart_value: number}\nsets: {returned_categories: {ttl: 30d}}\n"
        "maps: {last_viewed_price: {value: float}}\n",
    ),
    "contexts": Example(
        """\
contexts:
  in_transit:
    description: Between the gate and the arrival.
    ttl: 12h                      # ends by itself after 12 hours
    start: [boarding_pass_scanned]
    end:
      - trip_completed
      - {on: flight_cancelled, when: event.data.rebooked == false}
  pending_quote:
    description: A quote asked for and not sent yet; one per quote.
    key: event.data.quote_id      # one instance per quote: quote_sent ends only its own
    ttl: 7d                       # context.pending_quote: any quote pending;
    start: [quote_requested]      # context_active("pending_quote", event.data.quote_id):
    end: [quote_sent]             # this event's quote
""",
        _TRAVEL + _QUOTES[len("events:\n"):],
    ),
    "sets": Example(
        """\
sets:
  returned_categories:
    description: Categories returned lately, each for 30 days from its latest return.
    ttl: 30d                      # each member expires on its own; default: until removed
    max: 50                       # beyond 50 members the oldest goes
""",
    ),
    "maps": Example(
        """\
maps:
  last_viewed_price:
    description: The price each product was last seen at, for 30 days from that view.
    value: float                  # str, int, float or bool
    ttl: 30d                      # each entry expires on its own; default: until removed
    max: 50                       # beyond 50 entries the oldest goes
""",
    ),
    "messages": Example(
        """\
messages:
  cart_reminder:
    category: promotion
    channels: [push, email]       # tried in this order
    choose: first                 # one channel only: the first that may send
    params: {first_name: customer.attributes.first_name}
    cooldown: 24h                 # at most once a day, across channels
  weekly_picks:
    category: promotion
    channels: [push, email]
    choose: engaged               # where they opened and clicked most in 90 days, then in order
  order_receipt:
    category: service
    channels: [email]
    consent: none                 # transactional: sent without marketing consent
""",
        _CHANNELS + "attributes: {first_name: str}\n",
    ),
    "policies": Example(
        """\
policies:
  in_transit:
    description: No promotions while the customer is travelling.
    when: context.in_transit
    suppress: {categories: [promotion]}
""",
        _CHANNELS + _TRAVEL
        + "contexts: {in_transit: {ttl: 12h, start: [boarding_pass_scanned]}}\n",
    ),
    "frequency_caps": Example(
        """\
frequency_caps:
  - {id: promo_push_daily, channels: [push], categories: [promotion], max: 2, window: 24h}
""",
        _CHANNELS,
    ),
    "quiet_hours": Example(
        """\
quiet_hours:
  - {id: night, channels: [push, sms], categories: [promotion], start: "21:00", end: "08:00"}
""",
        _CHANNELS,
    ),
    "rules": Example(
        """\
rules:
  - id: cart_reminder_30m
    description: Remind about a cart left alone for 30 minutes.
    on: cart_updated
    when: event.data.value >= 20
    after: 30m                    # a follow-up: sent 30 minutes after the event...
    unless: [purchase]            # ...unless a purchase comes first
    send: cart_reminder
  - id: weekend_offer
    on: app_open
    when: local_weekday() in [saturday, sunday]
    active: {from: "2026-10-30", until: "2026-11-29", tz: Europe/Rome}
    holdout: {percent: 10, salt: weekend-2026}
    priority: 50
    relevance: 2h
    send: {message: weekend_offer, channels: [push], params: {discount: 15}}
  - id: quote_escalation
    on: quote_requested
    after: 4h
    key: event.data.quote_id      # one follow-up per quote; read on quote_sent too,
    unless: [quote_sent]          # which cancels only the follow-up of its own quote
    send: quote_escalation
""",
        _CHANNELS + _EVENTS + _QUOTES[len("events:\n"):] + """\
messages:
  cart_reminder: {category: promotion, channels: [push, email]}
  weekend_offer: {category: promotion, channels: [push, email]}
  quote_escalation: {category: internal, channels: [webhook]}
""",
    ),
    "kpis": Example(
        """\
kpis:
  nps: {event: nps_submitted, score: event.data.score}       # answers 0-10
  csat: {event: csat_submitted, score: event.data.rating}    # 1-5; scale: 5 by default
  ces: {event: ces_submitted, score: event.data.effort, scale: 7}
""",
        """\
events:
  nps_submitted: {data: {score: int}}
  csat_submitted: {data: {rating: int}}
  ces_submitted: {data: {effort: int}}
""",
    ),
    "campaigns": Example(
        """\
campaigns:
  - id: weekend_gold
    description: The weekend offer for gold customers, Friday mornings.
    schedule: {cron: "0 10 * * FRI", tz: Europe/Rome}   # or {at: "2026-11-27T10:00", tz: ...}
    audience: customer.attributes.tier == "gold"        # on each customer's state
    send: weekend_offer
    rate: 500/s                   # customers reached per second by the fan-out
    holdout: {percent: 5, salt: weekend-gold}
""",
        _CHANNELS + """\
attributes: {tier: str}
messages:
  weekend_offer: {category: promotion, channels: [push]}
""",
    ),
}
