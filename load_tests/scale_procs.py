"""Scale-out on one host: (c) as `tact run --processes N`, N alternating, in max mode.

One topic of pre-produced events (as ``compare``'s max mode: 6 partitions, 100k customers,
the 200-rule pack), then for each round every N in ``--processes`` in turn on a fresh group,
Redis database and changelog::

    python -m load_tests.scale_procs --events 150000 --processes 1,2 --rounds 3

Per run: max ev/s (first to last output append), events per CPU-second (the supervisor and
its children, whole life), lost and duplicate decision ids. The last line is one JSON
object with every run and the medians per N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from dataclasses import replace
from typing import Any

from load_tests.compare import Options, Run
from load_tests.measure import console

FIELDS = ("throughput_eps", "events_per_cpu_second", "lost", "duplicate_decision_ids",
          "machine_busy_cores", "status", "exit_codes")


async def scale(o: Options, counts: list[int], rounds: int) -> dict[str, Any]:
    run = Run(o)
    await run.probe.start()
    runs: list[dict[str, Any]] = []
    try:
        topic, events, _ = await run.preproduce("procs", o.events, f"{o.run_id}p-")
        for r in range(rounds):
            for n in counts:
                label = f"p{n}r{r}"
                t = replace(run.target("c", label, topic, worker=f"lt-{o.run_id}-{label}"),
                            processes=n)
                res = await run.run_system(t, events, label)
                row = {"processes": n, "round": r, **{f: res.get(f) for f in FIELDS}}
                console.print(row)
                runs.append(row)
    finally:
        await run.probe.stop()
        await run.cleanup()

    def median(n: int, f: str) -> float | None:
        values = [x[f] for x in runs if x["processes"] == n and x.get(f)]
        return statistics.median(values) if values else None

    medians = {str(n): {f: median(n, f) for f in ("throughput_eps", "events_per_cpu_second")}
               for n in counts}
    base = medians[str(counts[0])]["throughput_eps"]
    for n in counts:
        eps = medians[str(n)]["throughput_eps"]
        medians[str(n)]["speed_up"] = round(eps / base, 2) if eps and base else None
    return {"run_id": o.run_id, "events": o.events, "partitions": o.partitions,
            "runs": runs, "medians": medians}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.scale_procs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=150_000)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--processes", default="1,2", help="N values, alternated each round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--brokers", default="127.0.0.1:9092")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/13",
                   help="a dedicated database: it is FLUSHED before each run")
    a = p.parse_args(argv)
    o = Options(events=a.events, customers=a.customers, only=("c",), modes=("max",),
                partitions=a.partitions, brokers=a.brokers, redis_url=a.redis_url)
    counts = [int(x) for x in a.processes.split(",")]
    out = asyncio.run(scale(o, counts, a.rounds))
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
