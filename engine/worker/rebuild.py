"""`tact state restore`: rebuild the state store from the changelog, outside a worker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped,unused-ignore]

from engine.config import TactSettings
from engine.errors import TactError
from engine.state.redis import RedisStateStore
from engine.worker.changelog import KafkaChangelog
from engine.worker.restore import Restored, Restorer
from engine.worker.runtime import _kafka_security, topic_partitions


async def rebuild(settings: TactSettings, prefix: str, partitions: Sequence[int] | None,
                  report: Callable[[str], None]) -> list[Restored]:
    """Rebuild ``partitions`` (default: every partition of the changelog topic)."""
    count = await topic_partitions(settings, settings.state_topic)
    if count is None:
        raise TactError(f"the changelog topic {settings.state_topic} does not exist")
    chosen = sorted(set(partitions)) if partitions else list(range(count))
    wrong = [p for p in chosen if not 0 <= p < count]
    if wrong:
        raise TactError(f"{settings.state_topic} has partitions 0..{count - 1}, not {wrong}")

    def consumer() -> Any:
        return AIOKafkaConsumer(bootstrap_servers=settings.brokers(), group_id=None,
                                enable_auto_commit=False, isolation_level="read_committed",
                                client_id="tact-state-restore", **_kafka_security(settings))

    store = RedisStateStore.from_settings(settings, prefix=prefix)
    changelog = KafkaChangelog(settings.state_topic, consumer)
    restorer = Restorer(store, changelog)
    done: list[Restored] = []
    try:
        for p in chosen:
            got = await restorer.restore(p, fresh=True)
            report(f"partition {p}: {got.states} states, changelog up to {got.mark}, "
                   f"{got.seconds:.2f} s")
            done.append(got)
    finally:
        await changelog.close()
        await store.close()
    return done
