"""Hot reload in a running `tact run`: a bad pack is rejected and the old one keeps serving;
a good pack is swapped in and stamped on the next decisions. Also the admin endpoint's token,
the health endpoints and a clean SIGTERM shutdown."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.pack.loader import load_pack
from engine.services import manager
from tests.integration.kafka_utils import (
    REPO,
    CommittedReader,
    WorkerNames,
    after,
    delete_prefix,
    http,
    produce,
    wait_committed,
)
from tests.integration.worker_proc import WorkerProcess, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = "reload-test-token"


def _shipped(i: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    at = "2026-03-02T10:00:00+00:00"
    ev = {"id": f"ev-{i}", "customer": "c-1", "type": "order_shipped", "at": at,
          "data": {"order": f"O-{i}", "carrier": "UPS"}}
    return b"c-1", orjson.dumps(ev), [("tact-received", at.encode())]


async def test_hot_reload(services: manager.Connection, tmp_path: Path) -> None:
    names = WorkerNames.new("reload", services.bootstrap_servers, services.redis_url)
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules)
    v1 = load_pack(rules).version
    w = WorkerProcess(names, tmp_path / "worker.log",
                      env={"TACT_RELOAD_INTERVAL_S": "0.2", "TACT_API_TOKEN": TOKEN},
                      args=["--rules", str(rules), "--no-wall-clock"])
    base = w.base
    try:
        body = await w.wait_ready(token=TOKEN, timeout=30)
        assert body["rules_version"] == v1
        assert (await http("GET", f"{base}/healthz"))[0] == 200

        async with CommittedReader(names.bootstrap, names.decisions) as reader:
            async def decide(i: int) -> list[dict[str, Any]]:
                meta = await produce(names.bootstrap, names.events, [_shipped(i)])
                await wait_committed(names.bootstrap, names.group, after(meta))
                return [orjson.loads(r.value) for r in await reader.read_new()]

            first = await decide(1)
            assert first and {d["rules_version"] for d in first} == {v1}

            # a broken pack: rejected, logged, the old one keeps serving
            moments = rules / "moments.yaml"
            good_text = moments.read_text()
            moments.write_text(good_text.replace("send: shipping_update",
                                                 "send: no_such_message"))

            async def rejected() -> dict[str, Any] | None:
                _, body = await http("GET", f"{base}/readyz", token=TOKEN)
                return body if body.get("rules_errors") else None

            body = await until(rejected, 20, "the broken pack's rejection")
            assert body["rules_version"] == v1 and body["ready"] is True
            assert any("no_such_message" in e for e in body["rules_errors"])
            # without the token: the checks' states only, not the rule files' errors
            status, public = await http("GET", f"{base}/readyz")
            assert status == 200 and public == {"ready": True, "checks": body["checks"]}
            status, public = await http("GET", f"{base}/readyz", token="wrong")
            assert "rules_errors" not in public and "rules_version" not in public
            second = await decide(2)
            assert second and {d["rules_version"] for d in second} == {v1}

            # the admin endpoint: a token is required; a forced reload reports the errors
            status, _ = await http("POST", f"{base}/admin/reload")
            assert status == 401
            status, _ = await http("POST", f"{base}/admin/reload", token="wrong")
            assert status == 401
            status, out = await http("POST", f"{base}/admin/reload", token=TOKEN)
            assert status == 422 and out["ok"] is False and out["version"] == v1
            assert any("no_such_message" in e for e in out["errors"])

            # a good new pack: picked up by the watcher, stamped on the next decisions
            moments.write_text(good_text.replace("priority: 70", "priority: 71"))
            v2 = load_pack(rules).version
            assert v2 != v1

            async def swapped() -> dict[str, Any] | None:
                _, body = await http("GET", f"{base}/readyz", token=TOKEN)
                return body if body.get("rules_version") == v2 else None

            body = await until(swapped, 20, "the new pack's swap")
            assert body["rules_errors"] == []
            third = await decide(3)
            assert third and {d["rules_version"] for d in third} == {v2}

            status, out = await http("POST", f"{base}/admin/reload", token=TOKEN)
            assert status == 200 and out == {"ok": True, "version": v2, "previous": v2,
                                              "swapped": False, "errors": []}
            status, stats = await http("GET", f"{base}/stats")
            assert status == 200 and stats["reloads"]["rejected"] >= 1
            assert stats["rules_version"] == v2

        assert w.stop() == 0, w.log_tail()
    finally:
        w.stop()
        await delete_prefix(names.redis_url, names.prefix)
    text = (tmp_path / "worker.log").read_text(errors="replace")
    assert "rejected" in text and "no_such_message" in text
