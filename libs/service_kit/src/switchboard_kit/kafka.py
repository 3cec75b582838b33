"""Kafka administration the services need at runtime, on Apache Kafka as on the embedded broker."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["DEFAULT_PARTITIONS", "ensure_topics"]

DEFAULT_PARTITIONS = 4  # what tansu gives an auto-created topic; KAFKA_NUM_PARTITIONS in docker-compose


async def ensure_topics(bootstrap: str, names: Iterable[str], partitions: int = DEFAULT_PARTITIONS) -> None:
    """Creates the topics that do not exist yet (replication factor 1); existing ones are left alone."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    wanted = list(dict.fromkeys(names))
    if not wanted:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        # No list_topics() first: a Metadata request is enough to make tansu auto-create.
        response = await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in wanted]
        )
        for topic, code, message in response.topic_errors:
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"creating topic {topic!r} failed: error {code} {message or ''}".strip())
    finally:
        await admin.close()
