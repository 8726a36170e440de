"""Instructions per event of one ``decide()`` call, counted by valgrind's callgrind.

On a shared 2-core machine wall-clock figures move by 2x between runs; instruction counts
do not (they move by under 1% run to run), so a change to the decide path can be measured
even when the machine is busy. Instructions are not time (cache misses are not counted),
so confirm a large change with ``bench_rules`` on a quiet machine.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
        python -m load_tests.callgrind_decide --events 1000 --rules 1000
    grep ^totals /tmp/cg.out        # instructions; divide by --events

Only the one timed ``decide()`` is counted: the script switches callgrind's
instrumentation on just before it and off just after (``callgrind_control``). The pack,
events and states are the rules benchmark's (``load_tests.rule_packs``).
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess

from engine.pack.loader import load_pack_text
from engine.pipeline import decide
from load_tests.rule_packs import customer_seeds, make_batch, make_states, pack_yaml


def instrument(on: bool) -> None:
    """Callgrind's instrumentation of this process on or off (nothing outside valgrind)."""
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   capture_output=True, check=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--same-trigger", action="store_true", help="every rule on one event type")
    ap.add_argument("--no-match", action="store_true", help="no rule qualifies (matching only)")
    ap.add_argument("--no-gc", action="store_true", help="garbage collector off while counted")
    ap.add_argument("--gen0", type=int, default=0, help="gc.set_threshold(N, ...) if given")
    ap.add_argument("--freeze", action="store_true",
                    help="gc.freeze() after loading, as the worker does (the pack leaves the GC)")
    args = ap.parse_args(argv)
    pack = load_pack_text(pack_yaml(args.rules, same_trigger=args.same_trigger,
                                    no_match=args.no_match))
    seeds = customer_seeds(500)
    batch = make_batch(args.events, seeds, event_type="ev_00" if args.same_trigger else None)
    decide(pack, make_states(seeds), batch)  # warm-up: memos, first-call costs
    states = make_states(seeds)
    gc.collect()
    if args.freeze:
        gc.freeze()
    if args.gen0:
        gc.set_threshold(args.gen0, 50, 100)
    if args.no_gc:
        gc.disable()
    instrument(True)
    decide(pack, states, batch)
    instrument(False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
