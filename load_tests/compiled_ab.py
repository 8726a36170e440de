"""Compiled core against pure Python, in instructions per event (callgrind), alternating.

Run from a tree built with ``make compile`` (or ``TACT_COMPILE=1 pip install -e .``):

    PYTHONPATH=$PWD python -m load_tests.compiled_ab --rules 1000 200 --repeat 2 [--io]

The pure side is a copy of ``engine``, ``connectors`` and ``load_tests`` without the
extension modules (the same sources), so nothing in the tree is moved. Each round runs
``load_tests.callgrind_decide`` under valgrind on both sides, one after the other;
``--io`` adds ``load_tests.bench_io --callgrind`` (the worker's whole batch path).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from engine.compiled import core_build

REPO = Path(__file__).resolve().parents[1]
_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def pure_copy(into: Path) -> Path:
    """The packages the benchmarks import, without any compiled extension."""
    for package in ("engine", "connectors", "load_tests"):
        shutil.copytree(REPO / package, into / package,
                        ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    return into


def instructions(root: Path, module_args: list[str], scratch: Path) -> int:
    """Callgrind's instruction total for ``python -m <module_args>`` run from ``root``."""
    out = scratch / "cg.out"
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, "-m", *module_args],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, check=True,
        capture_output=True)
    found = _TOTALS.search(out.read_text())
    if found is None:
        raise SystemExit(f"no totals in callgrind's output of {module_args}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rules", type=int, nargs="+", default=[1000, 200])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2, help="alternating rounds per benchmark")
    ap.add_argument("--io", action="store_true", help="also bench_io --callgrind (10k events)")
    args = ap.parse_args(argv)
    build = core_build()
    if not build.compiled or build.pure or build.stale:
        raise SystemExit(f"this tree's core is not fully compiled and fresh: {build.describe()}"
                         " (run `make compile` first)")
    benches = [(f"decide, {n} rules", ["load_tests.callgrind_decide", "--events",
                                         str(args.events), "--rules", str(n)], args.events)
               for n in args.rules]
    if args.io:
        benches.append(("bench_io batch path", ["load_tests.bench_io", "--callgrind",
                                                "--events", "10000", "--repeat", "1"], 10_000))
    with tempfile.TemporaryDirectory() as tmp:
        pure = pure_copy(Path(tmp) / "pure")
        for label, module_args, events in benches:
            counts: dict[str, list[float]] = {"pure": [], "compiled": []}
            for _ in range(args.repeat):
                for side, root in (("pure", pure), ("compiled", REPO)):
                    counts[side].append(instructions(root, module_args, Path(tmp)) / events)
            before, after = min(counts["pure"]), min(counts["compiled"])
            print(f"{label}: pure {before / 1000:.1f}k, compiled {after / 1000:.1f}k "
                  f"instructions/event ({after / before - 1:+.1%}); runs "
                  f"pure {[round(c) for c in counts['pure']]}, "
                  f"compiled {[round(c) for c in counts['compiled']]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
