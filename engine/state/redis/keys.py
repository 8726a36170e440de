"""Where the Redis store keeps things: every key of one Kafka partition in one hash slot.

``prefix`` defaults to ``tact:`` (tests use ``tact-test-<uuid>:``); ``N`` is the partition::

    {prefix}{pN}:s:<customer>   string: the stored value (version header + msgpack)  TTL
    {prefix}{pN}:q:<customer>   string: the first undecodable value seen there (quarantine)
    {prefix}{pN}:due            sorted set: customer -> next follow-up due time
    {prefix}{pN}:mark           string: the changelog position the partition's states reflect

The ``{pN}`` hash tag puts all of partition N in one Redis Cluster slot, so one script call
writes a partition's states, index and mark atomically on a cluster as on a single server.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2  # type: ignore[import-untyped,unused-ignore]

__all__ = ["Keys", "partition_of"]


def partition_of(customer: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a record keyed by ``customer``."""
    return int((murmur2(customer.encode("utf-8")) & 0x7FFFFFFF) % partitions)


class Keys:
    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain '{' or '}' (hash tags)")
        self.prefix = prefix

    def tag(self, partition: int) -> str:
        return f"{self.prefix}{{p{partition}}}:"

    def state(self, customer: str, partition: int) -> str:
        return f"{self.prefix}{{p{partition}}}:s:{customer}"

    def quarantine(self, customer: str, partition: int) -> str:
        return f"{self.prefix}{{p{partition}}}:q:{customer}"

    def due(self, partition: int) -> str:
        return f"{self.prefix}{{p{partition}}}:due"

    def mark(self, partition: int) -> str:
        return f"{self.prefix}{{p{partition}}}:mark"

    def states_pattern(self, partition: int) -> str:
        """SCAN pattern of the partition's state keys."""
        return f"{self.prefix}{{p{partition}}}:s:*"
