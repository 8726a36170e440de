"""Hot reload: watch the rules path, check a changed pack, swap it in between batches.

The watcher polls the rule files' names, sizes and modification times every
``reload_interval_s``. A change (or ``POST /admin/reload``) loads and compiles the pack in a
thread. A valid pack replaces :attr:`PackWatcher.pack`; the batch loop reads that attribute
once per batch, so a swap takes effect between batches and a batch never sees two packs.
An invalid pack is logged with every error and the previous pack keeps serving; the same
broken files are not reported again until they change.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import RulePackError
from engine.pack.loader import load_pack, rule_files
from engine.pack.model import RulePack
from engine.worker.stats import WorkerStats

log = logging.getLogger("tact.worker.reload")

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(slots=True)
class ReloadOutcome:
    ok: bool
    version: str  # the version now serving
    previous: str
    errors: list[str] = field(default_factory=list)

    @property
    def swapped(self) -> bool:
        return self.ok and self.version != self.previous

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "version": self.version, "previous": self.previous,
                "swapped": self.swapped, "errors": self.errors}


def fingerprint(path: Path) -> Fingerprint:
    """Names, sizes and mtimes of the pack's files: cheap to compute every second."""
    out: list[tuple[str, int, int]] = []
    try:
        files = rule_files([path])
    except OSError:
        return ()
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        out.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(out)


class PackWatcher:
    def __init__(self, path: Path, stats: WorkerStats | None = None) -> None:
        self.path = path
        self.stats = stats or WorkerStats()
        self._pack: RulePack | None = None
        self._seen: Fingerprint = ()
        self._lock = asyncio.Lock()
        self.last_errors: list[str] = []

    @property
    def pack(self) -> RulePack:
        if self._pack is None:
            raise RuntimeError("no rule pack loaded yet")
        return self._pack

    @property
    def loaded(self) -> bool:
        return self._pack is not None

    def load_initial(self) -> RulePack:
        """Load the pack at start-up; raises :class:`RulePackError` (the worker cannot start)."""
        fp = fingerprint(self.path)
        pack = load_pack(self.path)
        self._set(pack, fp)
        return pack

    def use(self, pack: RulePack) -> None:
        """Serve a pack given directly (in-process runs and tests); polling still works."""
        self._set(pack, fingerprint(self.path))

    def _set(self, pack: RulePack, fp: Fingerprint) -> None:
        self._pack = pack
        self._seen = fp
        self.last_errors = []
        self.stats.rules_version = pack.version

    async def poll(self) -> ReloadOutcome | None:
        """Reload if the files changed since the last load (or failed load); else None."""
        if fingerprint(self.path) == self._seen:
            return None
        return await self.reload()

    async def reload(self) -> ReloadOutcome:
        """Load the pack now; swap it in if valid, else keep the current one."""
        async with self._lock:
            previous = self._pack.version if self._pack else ""
            fp = fingerprint(self.path)
            try:
                pack = await asyncio.to_thread(load_pack, self.path)
            except RulePackError as exc:
                self._seen = fp  # do not report the same broken files every interval
                errors = [i.render() for i in exc.issues if i.severity == "error"] or [str(exc)]
                self.last_errors = errors
                self.stats.reloads["rejected"] += 1
                log.error("rule pack at %s rejected (%d error(s)); still serving %s:\n%s",
                          self.path, len(errors), previous or "nothing", "\n".join(errors))
                return ReloadOutcome(False, previous, previous, errors)
            except Exception as exc:  # an unreadable path: same treatment, never crash
                self._seen = fp
                self.last_errors = [f"{type(exc).__name__}: {exc}"]
                self.stats.reloads["rejected"] += 1
                log.error("rule pack at %s could not be loaded: %s; still serving %s",
                          self.path, exc, previous or "nothing")
                return ReloadOutcome(False, previous, previous, self.last_errors)
            self._set(pack, fp)
            self.stats.reloads["ok"] += 1
            if pack.version != previous:
                log.info("rule pack %s@%s loaded from %s (was %s)", pack.name, pack.version,
                         self.path, previous or "none")
            return ReloadOutcome(True, pack.version, previous)
