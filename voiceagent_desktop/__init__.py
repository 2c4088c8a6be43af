"""Voice Agent Desktop: a desktop voice assistant with local turn-taking and visible latency."""

__version__ = "0.1.0"
