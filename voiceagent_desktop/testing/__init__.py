"""Test and benchmark helpers: a private PulseAudio daemon with virtual devices, generated speech.

Nothing here is used by the app at run time; it needs the system packages listed in
``/work/shared/notes/virtual-audio.md`` (pulseaudio, pulseaudio-utils, espeak-ng).
"""

from __future__ import annotations

from .virtual_audio import PacatPlayer, Recording, VirtualAudio, VirtualAudioError, available

__all__ = ["PacatPlayer", "Recording", "VirtualAudio", "VirtualAudioError", "available"]
