"""The window's Record switch: records this conversation's audio (``recording.py``) from now on.

Off it reads "Record"; on, "● Recording", in the window's alarm colours, for as long as it records. The
engine says where recording stands (the bridge's ``recordingChanged``: at start, from the ``record_audio``
setting, and after "End conversation", which goes back to it); a click asks the engine to switch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .menus import set_checked_quietly
from .qt import QPushButton, QWidget

if TYPE_CHECKING:
    from .bridge import EngineBridge

OFF, ON = "Record", "● Recording"
UNSAVED = (
    "A recording is kept with its saved conversation: turn on Settings → Conversations → Save conversations."
)


class RecordButton(QPushButton):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(OFF, parent)
        self.setObjectName("sideButton")
        self.setAccessibleName("Record this conversation")
        self.setToolTip(
            "Record the microphone and the answers with this conversation, to play and replay its turns. "
            "Kept on this computer with the conversation; deleting the conversation deletes them."
        )
        self.setCheckable(True)
        self.setEnabled(False)
        self._bridge: EngineBridge | None = None
        self.toggled.connect(self._on_toggled)

    def attach(self, bridge: EngineBridge) -> None:
        """Follow the engine's recording through ``bridge``; enabled once it runs, if the conversation is
        saved."""
        self._bridge = bridge
        bridge.recordingChanged.connect(self.set_recording)
        bridge.ready.connect(self._on_ready)
        if bridge.is_ready:
            self._on_ready()

    def _on_ready(self, *_: object) -> None:
        if self._bridge is not None:
            self.setEnabled(self._bridge.can_record)
            self.set_recording(self._bridge.recording)
            if not self._bridge.can_record:
                self.setToolTip(UNSAVED)

    def detach(self) -> None:
        self._bridge = None
        self.setEnabled(False)
        self.set_recording(False)

    def set_recording(self, on: bool) -> None:
        """Show what the engine reported (without sending it back)."""
        set_checked_quietly(self, on)
        self.setText(ON if on else OFF)

    def _on_toggled(self, on: bool) -> None:
        self.setText(ON if on else OFF)
        if self._bridge is not None:
            self._bridge.set_recording(on)
