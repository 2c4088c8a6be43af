"""The project's exception tree. Third-party errors are mapped into it at the provider/audio boundary.

    VoiceAgentError                 base of everything the app raises on purpose; ``str(e)`` is a
    │                               message fit to show a user (no traceback, no secrets)
    ├── ConfigError                 the config file is unreadable or invalid, or a setting is wrong
    ├── AudioDeviceError            anything about the sound devices
    │   ├── NoAudioDeviceError      there is no input (or output) device at all
    │   ├── DeviceNotFoundError     a configured device name matches no device
    │   ├── DeviceBusyError         the device exists but cannot be opened (in use, bad format)
    │   └── DeviceLostError         the device went away while streaming
    └── ProviderError               an STT / LLM / TTS / VAD provider failed
        ├── MissingExtraError       the provider's optional dependencies are not installed;
        │                           the message names the extra (``pip install 'voiceagent-desktop[local]'``)
        ├── ModelLoadError          a model file is missing, unreadable or not a model
        │   └── ModelUnavailableError   a model file could not be obtained or failed its checksum
        └── ProviderRuntimeError    the provider failed while working (inference error, closed stream)

Cancellation is not an error: cancelled work raises ``asyncio.CancelledError`` as usual.
"""

from __future__ import annotations


class VoiceAgentError(Exception):
    """Base class: the message is written for the user."""


class ConfigError(VoiceAgentError):
    pass


class AudioDeviceError(VoiceAgentError):
    pass


class NoAudioDeviceError(AudioDeviceError):
    pass


class DeviceNotFoundError(AudioDeviceError):
    pass


class DeviceBusyError(AudioDeviceError):
    pass


class DeviceLostError(AudioDeviceError):
    pass


class ProviderError(VoiceAgentError):
    pass


class MissingExtraError(ProviderError):
    def __init__(self, package: str, extra: str, provider: str) -> None:
        super().__init__(
            f"{provider} needs the Python package '{package}', which is not installed. "
            f"Install it with: pip install 'voiceagent-desktop[{extra}]'"
        )
        self.package = package
        self.extra = extra


class ModelLoadError(ProviderError):
    pass


class ModelUnavailableError(ModelLoadError):
    pass


class ProviderRuntimeError(ProviderError):
    pass
