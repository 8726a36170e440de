"""The systems under test (issue 4): (a) passthrough, (b) plain Faust agent, (c) Tact's worker.

Each runs as its own subprocess: :func:`command` gives its argv and environment. This module
also generates the rules of (c)'s load-test pack (``load_tests/packs/loadtest/rules.yaml``):
``python -m load_tests.generator --write-pack load_tests/packs/loadtest``.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from load_tests.generator import (
    CARRIERS,
    CATEGORIES,
    DESTINATIONS,
    LOCALES,
    SEGMENTS,
    TOPICS,
    ZONES,
)

PACK_DIR = Path(__file__).resolve().parents[1] / "packs" / "loadtest"
NAMES: dict[str, str] = {
    "a": "raw aiokafka passthrough",
    "b": "plain Faust agent (Redis GET/SET per event)",
    "c": "Tact worker (tact run, 200 rules)",
}


@dataclass(frozen=True, slots=True)
class Target:
    """One system's process on one run's topics."""

    system: str  # "a", "b" or "c"
    events_topic: str
    output_topic: str
    dead_letter_topic: str
    group: str
    brokers: str
    redis_url: str
    worker_id: str = ""
    web_port: int = 0
    max_seconds: float = 900.0
    processes: int = 1  # (c): `tact run --processes N`, one supervisor, one web port


def command(t: Target) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that start ``t`` as a subprocess."""
    py = sys.executable
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if t.system == "a":
        return [py, "-m", "load_tests.baselines.passthrough", "--brokers", t.brokers,
                "--input", t.events_topic, "--output", t.output_topic, "--group", t.group,
                "--max-seconds", str(t.max_seconds)], env
    if t.system == "b":
        return [py, "-m", "load_tests.baselines.faust_agent", "--brokers", t.brokers,
                "--input", t.events_topic, "--output", t.output_topic,
                "--dead-letter", t.dead_letter_topic, "--group", t.group,
                "--redis", t.redis_url], env
    if t.system != "c":
        raise ValueError(f"unknown system {t.system!r}")
    env.update({
        "TACT_KAFKA_BROKERS": t.brokers,
        "TACT_EVENTS_TOPIC": t.events_topic,
        "TACT_DECISIONS_TOPIC": t.output_topic,
        "TACT_DEAD_LETTER_TOPIC": t.dead_letter_topic,
        "TACT_STATE_TOPIC": f"{t.group}.state",  # a fresh changelog per run, as Redis is
        "TACT_CONSUMER_GROUP": t.group,
        "TACT_REDIS_URL": t.redis_url,
        "TACT_RULES_PATH": str(PACK_DIR),
        "TACT_WEB_PORT": str(t.web_port or 6066),
        "TACT_WORKER_ID": t.worker_id or t.group,
    })
    tact = Path(py).with_name("tact")
    argv = [str(tact)] if tact.exists() else [py, "-c", "from engine.cli import main; main()"]
    procs = ["--processes", str(t.processes)] if t.processes > 1 else []
    return [*argv, "run", *procs], env


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values) - idle) / tick, sum(values) / tick


def stat_cpu_ticks(stat: str) -> tuple[int, int]:
    """(ppid, CPU ticks) from a /proc/<pid>/stat line: user + system time of the process
    and of its children it has waited for (utime, stime, cutime, cstime)."""
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces and ")"
    return int(fields[1]), sum(int(v) for v in fields[11:15])


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid`` and every live descendant (None: ``pid`` is gone)."""
    ticks: dict[int, tuple[int, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ticks[int(stat.parent.name)] = stat_cpu_ticks(stat.read_text())
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
    if pid not in ticks:
        return None
    tree, total, frontier = {pid}, 0, [pid]
    while frontier:
        parent = frontier.pop()
        total += ticks[parent][1]
        kids = [p for p, (ppid, _) in ticks.items() if ppid == parent and p not in tree]
        tree.update(kids)
        frontier += kids
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Proc:
    """A system under test, as a subprocess logging to a file."""

    def __init__(self, target: Target, log_path: Path) -> None:
        self.target = target
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> None:
        argv, env = command(self.target)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        self.started_at = time.time()

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen is not None else 0

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (an orderly stop), SIGKILL after ``timeout`` s; the exit code."""
        p = self.popen
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        if self._log is not None:
            self._log.close()
        return p.returncode

    def stats(self) -> dict[str, Any] | None:
        """The worker's ``GET /stats`` (system c only; None if not reachable)."""
        if self.target.system != "c" or not self.alive():
            return None
        url = f"http://127.0.0.1:{self.target.web_port}/stats"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body: dict[str, Any] = json.loads(resp.read())
                return body
        except (OSError, ValueError):
            return None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process and its children so far (Linux /proc)."""
        return tree_cpu_seconds(self.pid) if self.pid else None

    def log_lines(self, pattern: str, limit: int = 20) -> list[str]:
        """Lines of the log matching ``pattern`` (case-insensitive regex)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        rx = re.compile(pattern, re.IGNORECASE)
        return [line.strip() for line in text.splitlines() if rx.search(line)][:limit]

    def tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


# -- the load-test rule pack: 200 rules over the catalog's event types -------------------
# event type -> (event conditions, messages a rule on it may send)
PACK_EVENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "app_open": ((), ("points_expiring", "next_trip_discount", "flash_sale",
                      "spring_collection", "welcome_back", "points_boost")),
    "product_viewed": (('event.data.category in ["{cat}", "{cat2}"]',
                        "customer.windows.views >= {small}"), ("browse_offer", "similar_items")),
    "cart_updated": (("event.data.items >= {small}", "event.data.value > {value}"),
                     ("cart_reminder", "free_shipping")),
    "purchase": (("event.data.value > {value}", "customer.counters.purchases >= {small}"),
                 ("order_thanks", "cross_sell", "referral_invite")),
    "order_shipped": (('event.data.carrier == "{carrier}"',), ("shipping_update",)),
    "payment_failed": (("customer.windows.payment_failures >= {small}",), ("payment_help",)),
    "price_dropped": (("event.data.new_price < {value}",), ("price_drop",)),
    "newsletter_opened": (("event.data.issue > {issue}",),
                          ("newsletter_bonus", "spring_collection")),
    "profile_updated": (("customer.consent.push", 'customer.attributes.locale == "{locale}"'),
                        ("profile_thanks", "points_boost")),
    "boarding_pass_scanned": (('event.data.destination == "{dest}"',), ("travel_tips",)),
    "trip_completed": ((), ("trip_feedback", "next_trip_discount")),
    "nps_submitted": (("event.data.score <= {score}", "event.data.score >= {score}"),
                      ("care_outreach", "referral_invite")),
    "support_ticket_opened": (('event.data.topic == "{topic}"',), ("ticket_ack",)),
    "support_ticket_closed": ((), ("csat_survey",)),
}
CUSTOMER_CONDITIONS = (
    'customer.attributes.segment == "{seg}"',
    'customer.attributes.segment in ["{seg}", "{seg2}"]',
    "customer.attributes.points_expiring_days <= {days}",
    "customer.windows.sessions >= {small}",
    "hours_since(customer.timestamps.last_purchase) > {hours}",
    "not context.in_transit",
    'customer.attributes.tz == "{tz}"',
    "customer.consent.email",
)


def pack_rules(n_rules: int = 200, seed: int = 2026) -> list[dict[str, Any]]:
    """A catch-all rule per event type (so every valid event gets >= 1 decision), then
    conditional rules, round-robin over the types, with 1-2 conditions each."""
    rng = random.Random(seed)
    types = list(PACK_EVENTS)
    rules: list[dict[str, Any]] = [
        {"id": f"lt_{t}_seen", "on": t, "send": "event_seen", "priority": -1000} for t in types
    ]
    priorities = rng.sample(range(-900, 901), n_rules)
    for k in range(n_rules - len(types)):
        t = types[k % len(types)]
        conds, messages = PACK_EVENTS[t]
        fill = {"cat": rng.choice(CATEGORIES), "cat2": rng.choice(CATEGORIES),
                "small": rng.randint(2, 4), "value": rng.choice((50, 100, 200, 300)),
                "carrier": rng.choice(CARRIERS), "issue": rng.randrange(10, 110),
                "locale": rng.choice(LOCALES), "dest": rng.choice(DESTINATIONS),
                "score": rng.randint(3, 9), "topic": rng.choice(TOPICS),
                "seg": rng.choice(SEGMENTS), "seg2": rng.choice(SEGMENTS),
                "days": rng.randint(5, 30), "hours": rng.choice((24, 72, 168)),
                "tz": rng.choice(ZONES)}
        when = [c.format(**fill) for c in rng.sample(conds, min(len(conds), 1))]
        if not when or rng.random() < 0.7:
            when.append(rng.choice(CUSTOMER_CONDITIONS).format(**fill))
        rule: dict[str, Any] = {"id": f"lt_{t}_{k:03d}", "on": t,
                                "when": when if len(when) > 1 else when[0],
                                "send": messages[(k // len(types)) % len(messages)],
                                "priority": priorities[k]}
        if k % 10 == 4:
            rule["holdout"] = {"percent": 5, "salt": f"lt{k}"}
        if k % 7 == 1:
            rule["relevance"] = "2h"
        if t == "cart_updated" and k % 3 == 0:
            rule.update({"after": "30m", "unless": ["purchase"], "send": "cart_reminder"})
        rules.append(rule)
    return rules


def write_pack(directory: Path, n_rules: int = 200) -> Path:
    """Write ``rules.yaml`` (one JSON-style flow mapping per rule: valid YAML)."""
    path = directory / "rules.yaml"
    lines = ["# Generated: python -m load_tests.generator --write-pack load_tests/packs/loadtest",
             f"# {n_rules} rules; lt_<type>_seen is the catch-all of each event type.",
             "rules:"]
    lines += [f"  - {orjson.dumps(r).decode()}" for r in pack_rules(n_rules)]
    path.write_text("\n".join(lines) + "\n")
    return path


