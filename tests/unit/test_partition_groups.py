"""The order in which a replay reads partitions (docs/adr/0051)."""

from aiokafka import TopicPartition

from projections.runner import partition_groups


def test_partitions_are_grouped_by_number_lowest_first() -> None:
    parts = [TopicPartition(t, p) for t in ("b", "a") for p in (2, 0, 1)] + [TopicPartition("c", 0)]
    assert partition_groups(parts) == [
        [TopicPartition("a", 0), TopicPartition("b", 0), TopicPartition("c", 0)],
        [TopicPartition("a", 1), TopicPartition("b", 1)],
        [TopicPartition("a", 2), TopicPartition("b", 2)],
    ]
