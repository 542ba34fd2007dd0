"""A shortened soak (bench/bench_soak.py): a minute of sessions churning
against one broker, SIGKILLed or closing, and then every count the broker
keeps back at its baseline: peers in memory, session files, open files."""

from __future__ import annotations

import pytest

from bench.bench_soak import soak


@pytest.mark.slow
def test_after_a_minute_of_churn_every_count_comes_back_to_its_baseline() -> None:
    got = soak(seconds=60, long=3, every=2.0, window=20.0, period=3.0)
    base, after = got.baseline, got.after
    assert base is not None and after is not None
    assert got.errors == 0, got.error_lines
    assert got.killed > 5 and got.closed > 5
    assert max(s.peers_in_memory for s in got.samples) > 5  # the churn was there
    assert max(s.session_files for s in got.samples) > 5
    assert after.peers_in_memory == base.peers_in_memory
    assert after.session_files == base.session_files
    assert after.fds <= base.fds + 2
    assert got.settle_seconds < 2 * 20 + 30
    late = [s.rss_mb for s in got.samples if s.at > 30]
    assert max(late) - min(late) < 15  # no runaway growth (the bench measures the slope)
