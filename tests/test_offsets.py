"""The commit rule: a position moves only past offsets whose every output was acked, and
never past a message consumed but not yet published."""

from btsbot_stream.stream.offsets import OffsetTracker

TP = ("ztf", 0)


def _consume(tracker: OffsetTracker, offset: int, outputs: int) -> int:
    epoch = tracker.consumed(TP, offset)
    tracker.produced(TP, offset, epoch, outputs)
    return epoch


def test_commit_waits_for_the_lowest_unacked_offset():
    tracker = OffsetTracker()
    epoch = _consume(tracker, 10, outputs=1)
    _consume(tracker, 11, outputs=2)  # e.g. scored topic + compact topic
    _consume(tracker, 12, outputs=1)
    assert tracker.committable() == {TP: 10}
    tracker.acked(TP, 12, epoch)
    tracker.acked(TP, 11, epoch)
    assert tracker.committable() == {TP: 10}  # 10 still waits: nothing may move
    tracker.acked(TP, 10, epoch)
    assert tracker.committable() == {TP: 11}  # 11 has one of its two outputs left
    tracker.acked(TP, 11, epoch)
    assert tracker.committable() == {TP: 13}
    assert tracker.in_flight() == 0


def test_a_consumed_message_not_yet_published_holds_the_commit():
    tracker = OffsetTracker()
    epoch = _consume(tracker, 0, outputs=1)
    tracker.consumed(TP, 1)  # in the pipeline: outputs unknown
    tracker.acked(TP, 1, epoch)  # a stray ack cannot settle it
    epoch = _consume(tracker, 2, outputs=1)
    tracker.acked(TP, 0, epoch)
    tracker.acked(TP, 2, epoch)
    assert tracker.committable() == {TP: 1}
    tracker.produced(TP, 1, epoch, 0)  # nothing to publish (e.g. dropped): done
    assert tracker.committable() == {TP: 3}


def test_committed_positions_are_not_repeated_and_revoked_partitions_forgotten():
    tracker = OffsetTracker()
    epoch = _consume(tracker, 0, outputs=1)
    tracker.acked(TP, 0, epoch)
    positions = tracker.committable()
    tracker.mark_committed(positions)
    assert tracker.committable() == {}
    epoch = _consume(tracker, 1, outputs=1)
    tracker.forget([TP])
    tracker.acked(TP, 1, epoch)  # a late ack for a revoked partition is ignored
    assert tracker.committable() == {} and tracker.in_flight() == 0


def test_acks_of_an_earlier_assignment_do_not_settle_offsets_consumed_again():
    tracker = OffsetTracker()
    old = _consume(tracker, 5, outputs=1)
    tracker.forget([TP])  # lost: another member may own it now
    new = _consume(tracker, 5, outputs=1)  # assigned again, offset 5 read again
    tracker.acked(TP, 5, old)  # the first assignment's output is acknowledged late
    assert tracker.committable() == {TP: 5}
    tracker.acked(TP, 5, new)
    assert tracker.committable() == {TP: 6}


def test_commit_marks_never_move_backwards_and_only_named_partitions_commit():
    tracker = OffsetTracker()
    other = ("ztf", 1)
    for tp in (TP, other):
        epoch = tracker.consumed(tp, 0)
        tracker.produced(tp, 0, epoch, 0)
    assert tracker.committable(only=[other]) == {other: 1}
    tracker.mark_committed({TP: 1})
    tracker.mark_committed({TP: 0})  # a late answer to an older commit
    assert tracker.committable() == {other: 1}
