"""RecentMax: the largest value lately, forgotten after its window."""

from udfs.recent import RecentMax


def test_holds_the_largest_within_the_window_and_forgets_it_after():
    m = RecentMax(10.0)
    m.offer(5, 0.0)
    m.offer(3, 4.0)
    assert m.value == 5  # smaller, within the window: the largest stays
    m.offer(9, 6.0)
    assert m.value == 9
    m.offer(2, 15.0)
    assert m.value == 9  # 9 was set at 6 s: still within 10 s
    m.offer(2, 16.5)
    assert m.value == 2  # 9 is older than the window: a shrink shows


def test_starts_at_zero():
    assert RecentMax(1.0).value == 0


def test_read_after_a_quiet_window_shows_nothing_stale():
    m = RecentMax(10.0)
    m.offer(7, 100.0)
    assert m.current(105.0) == 7
    assert m.current(111.0) == 0  # nothing offered in the last 10 s
