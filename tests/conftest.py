"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from voiceagent_desktop.testing.virtual_audio import VirtualAudio, available


@pytest.fixture(scope="session")
def virtual_audio() -> Iterator[VirtualAudio]:
    """A private PulseAudio daemon with virtual speaker, microphone and probe (testing/virtual_audio.py).

    ``PULSE_SERVER`` points at it for the whole session; the default devices are the virtual ones.
    """
    if not available():
        pytest.fail(
            "Audio tests need PulseAudio: apt-get install --no-install-recommends "
            "pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins"
        )
    va = VirtualAudio()
    va.start()
    yield va
    va.stop()
