"""The shard's watchdog: quiet while the work beats, heard once it stops (tests/test_hardening.py
kills real workers with it)."""
from __future__ import annotations

import threading
import time

import pytest

from enhance_ops.watchdog import Watchdog, stall_limit


def test_beats_keep_it_quiet_and_silence_is_reported_once_with_how_long() -> None:
    heard: list[float] = []
    stalled = threading.Event()

    def on_stall(idle_s: float) -> None:
        heard.append(idle_s)
        stalled.set()

    with Watchdog(2.0, on_stall) as dog:
        for _ in range(12):  # 3 s of work, beating four times a second
            time.sleep(0.25)
            dog.beat()
        assert heard == []
        started = time.monotonic()
        assert stalled.wait(10)  # then nothing moves
        waited = time.monotonic() - started
    assert len(heard) == 1 and 2.0 < heard[0] < 3.5 and 1.5 < waited < 3.5


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Watchdog(0, lambda idle: None)


def test_a_beat_after_the_watch_has_ended_arms_nothing() -> None:
    """A late beat (a thread finishing after the block) had armed faulthandler's timer, which
    would then have ended the process with nobody left to stop it."""
    with Watchdog(0.5, lambda idle: None) as dog:
        dog.beat()
    dog.beat()
    time.sleep(1.5)  # past twice the limit: the process is still here


@pytest.mark.parametrize("text", ["-1", "abc", "nan", "inf"])
def test_a_stall_limit_that_is_no_number_of_seconds_is_refused(text: str) -> None:
    """``--stall-s -1`` had stopped a local run with a traceback once under way, leaving its journal behind."""
    with pytest.raises(ValueError, match=f"a stall limit is a number of seconds, 0 for none, not '{text}'"):
        stall_limit(text)


def test_the_stall_limit_comes_from_the_environment_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENHANCE_STALL_S", raising=False)
    assert (stall_limit(), stall_limit("0"), stall_limit("90")) == (1800.0, None, 90.0)
    monkeypatch.setenv("ENHANCE_STALL_S", "0")
    assert stall_limit() is None
