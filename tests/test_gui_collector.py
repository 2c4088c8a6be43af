"""Cyclic garbage is collected on the GUI thread, never on the thread that happens to allocate."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from voiceagent_desktop.gui.collector import MainThreadCollector, collect_due


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


COLLECTED_ON: list[str] = []


class _Traced:
    """Records the thread that collects its cycle."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        COLLECTED_ON.append(threading.current_thread().name)


@pytest.fixture
def manual_gc() -> Iterator[None]:
    """The automatic collector off (it would collect as soon as a lowered threshold passes)."""
    old = gc.get_threshold()
    gc.disable()
    yield
    gc.set_threshold(*old)
    gc.enable()


def test_only_a_generation_whose_threshold_has_passed_is_collected(manual_gc: None) -> None:
    gc.collect()
    gc.set_threshold(10_000, 10, 10)
    assert collect_due() is None  # just collected: nothing due
    node = weakref.ref(_Node())
    assert node() is not None
    gc.set_threshold(1, 10, 10)
    _ = [_Node() for _ in range(5)]  # allocations past the (lowered) first threshold
    assert collect_due() == 0
    assert node() is None


def test_the_app_collects_on_the_gui_thread_while_other_threads_allocate(qtbot) -> None:  # type: ignore[no-untyped-def]
    collector = MainThreadCollector(interval_ms=20)
    collector.start()
    try:
        assert not gc.isenabled()
        COLLECTED_ON.clear()

        def allocate() -> None:  # a worker making cycles, well past the first generation's threshold
            for _ in range(3 * gc.get_threshold()[0]):
                _Traced()

        worker = threading.Thread(target=allocate, name="worker")
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: len(COLLECTED_ON) >= gc.get_threshold()[0], timeout=10_000)
        assert set(COLLECTED_ON) == {threading.main_thread().name}
    finally:
        collector.stop()
    assert gc.isenabled() is False  # the test fixture's own collector still owns it in a Qt test


def test_stop_turns_the_automatic_collector_back_on_as_it_was() -> None:
    assert gc.isenabled()
    collector = MainThreadCollector()
    collector.start()
    assert not gc.isenabled()
    collector.stop()
    assert gc.isenabled()
