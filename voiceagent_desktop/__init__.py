"""Voice Agent Desktop: a desktop voice assistant with local turn-taking and visible latency."""

from importlib.metadata import PackageNotFoundError, version

try:  # one version, pyproject.toml's, read from the installed metadata (a frozen bundle ships it too)
    __version__ = version("voiceagent-desktop")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
