"""Providers: one small module per STT / LLM / TTS / VAD implementation behind the Protocols in base.py.

Each module imports its third-party dependencies lazily (inside ``load``) and maps their errors into
``voiceagent_desktop.errors`` so the engine never sees a foreign exception type.
"""
