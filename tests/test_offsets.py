"""The commit rule: a position moves only past offsets whose every output was acked."""

from btsbot_stream.stream.offsets import OffsetTracker

TP = ("ztf", 0)


def test_commit_waits_for_the_lowest_unacked_offset():
    tracker = OffsetTracker()
    tracker.consumed(TP, 10, outputs=1)
    tracker.consumed(TP, 11, outputs=2)  # e.g. scored topic + compact topic
    tracker.consumed(TP, 12, outputs=1)
    assert tracker.committable() == {TP: 10}
    tracker.acked(TP, 12)
    tracker.acked(TP, 11)
    assert tracker.committable() == {TP: 10}  # 10 still waits: nothing may move
    tracker.acked(TP, 10)
    assert tracker.committable() == {TP: 11}  # 11 has one of its two outputs left
    tracker.acked(TP, 11)
    assert tracker.committable() == {TP: 13}
    assert tracker.in_flight() == 0


def test_committed_positions_are_not_repeated_and_revoked_partitions_forgotten():
    tracker = OffsetTracker()
    tracker.consumed(TP, 0, outputs=1)
    tracker.acked(TP, 0)
    positions = tracker.committable()
    tracker.mark_committed(positions)
    assert tracker.committable() == {}
    tracker.consumed(TP, 1, outputs=1)
    tracker.forget([TP])
    tracker.acked(TP, 1)  # a late ack for a revoked partition is ignored
    assert tracker.committable() == {} and tracker.in_flight() == 0
