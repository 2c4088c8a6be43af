"""The PySide6 desktop GUI: the only package that imports Qt (through ``gui.qt``).

It talks to the asyncio engine through one object, ``bridge.EngineBridge`` (engine events → Qt
signals queued to the GUI thread, user commands → the engine's loop). The engine runs on a plain
asyncio loop in its own thread (``engine_thread``); qasync runs the GUI's own asyncio on Qt's event
loop. Entry point: ``app.run_gui``.
"""
