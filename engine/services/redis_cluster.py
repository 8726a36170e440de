"""A real Redis Cluster on loopback: N masters, no replicas, on consecutive ports.

Each node is a :class:`~engine.services.redis.RedisNode` in cluster mode with its own dir,
``nodes.conf`` and AOF under ``<home>/<port>``. The cluster is created once with
``redis-cli --cluster create``; afterwards the nodes find each other again from their
``nodes.conf`` after any restart, so ``up`` only waits for ``cluster_state:ok``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from engine.services import ServicesError
from engine.services.redis import HOST, RedisNode

__all__ = ["CLUSTER_SIZE", "NodeState", "RedisCluster", "cluster_info"]

#: Masters in the local cluster: the fewest Redis Cluster accepts without replicas.
CLUSTER_SIZE = 3
_HASH_SLOTS = 16384


def cluster_info(url: str, timeout: float = 1.0) -> dict[str, str] | None:
    """``CLUSTER INFO`` of the node at ``url`` as a dict, or ``None`` if it does not answer."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        raw = client.cluster("INFO")
    except redis.RedisError:
        return None
    finally:
        client.close()
    if isinstance(raw, dict):  # redis-py may already parse it
        return {str(k): str(v) for k, v in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    fields = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in fields}


@dataclass(frozen=True, slots=True)
class NodeState:
    """One cluster node: our process (if any) and what ``CLUSTER INFO`` says."""

    address: str
    pid: int | None
    info: dict[str, str] | None

    @property
    def ok(self) -> bool:
        return self.info is not None and self.info.get("cluster_state") == "ok"


@dataclass(frozen=True, slots=True)
class RedisCluster:
    """``size`` cluster nodes on ``first_port`` and up, their files under ``home/<port>``."""

    home: Path
    first_port: int
    size: int = CLUSTER_SIZE

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(range(self.first_port, self.first_port + self.size))

    @property
    def url(self) -> str:
        """A seed URL for cluster clients (they discover the other nodes from it)."""
        return f"redis://{HOST}:{self.first_port}"

    def nodes(self) -> tuple[RedisNode, ...]:
        return tuple(RedisNode(self.home / str(p), p, cluster=True) for p in self.ports)

    def _all_nodes(self) -> tuple[RedisNode, ...]:
        """These nodes plus any other node dir under ``home`` (started with other ports)."""
        ports = set(self.ports)
        if self.home.is_dir():
            ports |= {int(d.name) for d in self.home.iterdir() if d.name.isdigit()}
        return tuple(RedisNode(self.home / str(p), p, cluster=True) for p in sorted(ports))

    def states(self) -> tuple[NodeState, ...]:
        return tuple(
            NodeState(f"{HOST}:{node.port}", node.pid(), cluster_info(node.url))
            for node in self.nodes()
        )

    def any_running(self) -> bool:
        return any(node.pid() is not None for node in self._all_nodes())

    def start(self, server: str, timeout: float) -> bool:
        """Start the nodes that are not running, create the cluster if it never was, and wait
        until every node reports ``cluster_state:ok``. Returns whether it created the cluster.
        """
        nodes = self.nodes()
        for node in nodes:
            if node.pid() is None:
                node.write_config()
                node.start(server)
        deadline = time.monotonic() + timeout
        for node in nodes:
            node.wait_ready(max(deadline - time.monotonic(), 1.0))
        created = False
        if self._never_created():
            self._create(max(deadline - time.monotonic(), 1.0))
            created = True
        self._wait_ok(deadline)
        return created

    def _never_created(self) -> bool:
        """True if every node is still alone and owns no slot (a fresh ``nodes.conf``)."""
        for node in self.nodes():
            info = cluster_info(node.url) or {}
            if info.get("cluster_known_nodes") != "1" or info.get("cluster_slots_assigned") != "0":
                return False
        return True

    def _create(self, timeout: float) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise ServicesError(
                "redis-cli is required to create the Redis Cluster; install it "
                "(Debian: `apt-get install redis-tools`)"
            )
        addresses = [f"{HOST}:{port}" for port in self.ports]
        cmd = [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ServicesError(f"`redis-cli --cluster create` took over {timeout:.0f}s") from exc
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
            raise ServicesError(f"`redis-cli --cluster create` failed:\n{tail}")

    def _wait_ok(self, deadline: float) -> None:
        while True:
            states = self.states()
            if all(state.ok for state in states):
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        summary = ", ".join(
            f"{s.address}: {(s.info or {}).get('cluster_state', 'no answer')}"
            f" ({(s.info or {}).get('cluster_slots_assigned', '?')}/{_HASH_SLOTS} slots)"
            for s in states
        )
        raise ServicesError(
            f"the Redis Cluster did not reach cluster_state:ok ({summary}); if it was only "
            "partly created, recreate it with `tact services up --redis-cluster --fresh`"
        )

    def stop(self, timeout: float) -> bool:
        """Stop every node under ``home`` that runs, whatever its port; True if any did."""
        return any([node.stop(timeout) for node in self._all_nodes()])

    def wipe(self) -> None:
        """Delete every node's data (AOF and ``nodes.conf``). Only while they are stopped."""
        for node in self._all_nodes():
            node.wipe()
