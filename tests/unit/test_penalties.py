from boxless.node.penalties import PenaltyBox


def test_ban_after_threshold_within_window_and_expiry() -> None:
    box = PenaltyBox(threshold=3, window=10, ban_seconds=100)
    assert not box.record("p", 0) and not box.record("p", 1)
    assert box.record("p", 2)
    assert box.is_banned("p", 50)
    assert not box.is_banned("p", 102)


def test_old_violations_fall_out_of_the_window() -> None:
    box = PenaltyBox(threshold=3, window=10)
    box.record("p", 0)
    box.record("p", 1)
    assert not box.record("p", 20)  # the first two are older than the window
    assert not box.is_banned("p", 20)


def test_tracking_is_bounded() -> None:
    box = PenaltyBox(threshold=2, max_peers=100)
    for i in range(1000):
        box.record(i, 0)
    assert len(box._hits) == 100
