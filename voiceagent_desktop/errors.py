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
        ├── MissingKeyError         a cloud provider has no API key; the message names the environment
        │                           variable and the keyring entry to set
        └── ProviderRuntimeError    the provider failed while working (inference error, closed stream)
            └── CloudError          a cloud (or local network) provider failed; ``retryable`` says if the
                │                   same request may succeed later
                ├── AuthError           the key was rejected (401/403): never retried
                ├── QuotaError          the account is out of credit (OpenAI's 429 "insufficient_quota",
                │                       402): never retried
                ├── RateLimitError      429: retried after ``retry_after`` seconds (or backoff)
                ├── ServiceError        5xx, a dropped or refused connection, a stream that broke off:
                │                       retried
                ├── ProviderTimeout     no answer (or no next chunk) in time: retried
                └── ProtocolError       an answer the client cannot read (malformed frame), or a request
                                        the service refuses as invalid (400/404): not retried

Cancellation is not an error: cancelled work raises ``asyncio.CancelledError`` as usual.

Anything else that escapes is a bug. At a boundary (a turn, the start-up, a settings-dialog action) it is
logged with its traceback and the user is told ``user_message(exc)``: "Internal error (KeyError)" and where
the log is — never ``str(exc)`` of an arbitrary exception, which may hold a transcript or a header.
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


class MissingKeyError(ProviderError):
    def __init__(self, provider: str, env_var: str, key_name: str) -> None:
        super().__init__(
            f"{provider} needs an API key. Set the environment variable {env_var}, or store it in the system "
            f"keyring with: voiceagent keys set {key_name}"
        )
        self.env_var = env_var
        self.key_name = key_name


class CloudError(ProviderRuntimeError):
    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthError(CloudError):
    pass


class QuotaError(CloudError):
    pass


class RateLimitError(CloudError):
    retryable = True

    def __init__(self, message: str, *, status: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServiceError(CloudError):
    retryable = True


class ProviderTimeout(CloudError):
    retryable = True


class ProtocolError(CloudError):
    pass


def user_message(exc: BaseException) -> str:
    """What the user is told about ``exc``: a ``VoiceAgentError``'s own message (written for them); for
    any other exception, a bug, its type and where the log with its traceback is."""
    if isinstance(exc, VoiceAgentError):
        from .private import scrub  # (a service's message may quote the key it refused)

        return scrub(str(exc)) or type(exc).__name__
    from .logs import location

    return f"Internal error ({type(exc).__name__}); the details are in {location()}."
