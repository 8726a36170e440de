"""Soak: a `tact run` worker under a steady load for minutes, with faults, then judged.

The fault suite (``tests/integration/test_faults.py``) for longer: a private Kafka + Redis
(own services dir, free ports; the shared services are never touched), a steady rate of
events over many customers, cut in phases of about two minutes. Every phase SIGKILLs the
worker (the next one starts at once); one phase also flushes Redis (FLUSHALL), one restarts
the broker, one SIGKILLs Redis (restarted on its AOF). At the end, what the worker committed
and stored is compared with embedded mode on the same events and ticks
(:mod:`tests.integration.fault_run`), and the worker's RSS is reported per incarnation (a
SIGKILL starts a new process) with the growth within the longest one.

    python -m load_tests.soak                      # 10 minutes at 500 events/s
    python -m load_tests.soak --minutes 2 --rate 200 --customers 5000

Exit status 1 if anything was lost, repeated or different.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from tests.integration.fault_load import Plan
from tests.integration.fault_run import expected, judge, run
from tests.integration.fault_stack import PrivateStack

PHASE_S = 120.0  # one worker SIGKILL per phase
EXTRA_FAULTS = ("flushall", "kafka_restart", "redis_kill")  # once each, in phases 1, 2, 3


def plan(minutes: float, rate: float, customers: int, seed: int,
         worker_kills: bool = True) -> Plan:
    """Phases of about ``PHASE_S`` seconds; each has a worker SIGKILL (unless
    ``worker_kills`` is off: one incarnation all along, to watch its RSS), and the extra
    faults go one each to the phases after the first (all in one phase on a short run)."""
    n = max(1, round(minutes * 60 / PHASE_S))
    faults: list[list[str]] = [[] for _ in range(n)]
    for i, extra in enumerate(EXTRA_FAULTS):
        faults[(i + 1) % n].append(extra)
    for fs in faults:
        fs.extend(["worker_kill"] if worker_kills else [])
    return Plan(faults, events_per_phase=int(rate * minutes * 60 / n), customers=customers,
                rate=rate, seed=seed)


async def main(args: argparse.Namespace) -> int:
    the_plan = plan(args.minutes, args.rate, args.customers, args.seed, args.worker_kills)
    base = Path(tempfile.mkdtemp(prefix="tact-soak-"))
    stack = PrivateStack(base / "services")
    print(f"private stack in {base}: Kafka {stack.conn.bootstrap_servers}, Redis "
          f"{stack.conn.redis_url}; {len(the_plan.faults)} phases of "
          f"{the_plan.events_per_phase} events at {the_plan.rate:g}/s, faults "
          f"{[list(f) for f in the_plan.faults]}", flush=True)
    t0 = time.monotonic()
    stack.up()
    print(f"stack up in {time.monotonic() - t0:.1f} s", flush=True)
    try:
        out = await run(stack, the_plan, base / "worker.log", commit_timeout=600.0,
                        read_timeout=900.0, sample_every=5.0,
                        say=lambda line: print(line, flush=True))
    finally:
        if not args.keep:
            stack.down()
    t1 = time.monotonic()
    exp = await expected(out)
    figures, problems = judge(out, exp)
    print(f"embedded mode on the same events: {time.monotonic() - t1:.1f} s")
    events = figures["events"]
    print(f"\nevents {events} in {out.produce_s:.0f} s of producing ({events / out.produce_s:.0f}"
          f"/s), run {out.total_s:.0f} s in all; decisions {figures['decisions']} "
          f"(expected {figures['expected_decisions']}), dead letters "
          f"{figures['dead_letters']}")
    for key in ("lost_decisions", "duplicate_decision_ids", "unexpected_decisions",
                "differing_decisions", "lost_dead_letters", "duplicate_dead_letters",
                "lost_states", "differing_states"):
        print(f"  {key}: {figures[key]}")
    print("worker RSS per incarnation:")
    for line in out.rss:
        print(f"  {line}")
    print(f"worker log: {base / 'worker.log'}")
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    print("OK: nothing lost, nothing twice, every state and probe as in embedded mode")
    return 0


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0, help="events per second")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-worker-kills", dest="worker_kills", action="store_false",
                        help="no worker SIGKILL: one incarnation all along (RSS over time)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the private stack running (its dir is printed)")
    sys.exit(asyncio.run(main(parser.parse_args())))


if __name__ == "__main__":
    cli()
