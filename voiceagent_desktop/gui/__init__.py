"""The PySide6 desktop GUI: the only package that imports Qt (through ``gui.qt``).

It talks to the asyncio engine through one object, ``bridge.EngineBridge`` (engine events → Qt
signals, user commands → the engine); qasync runs asyncio on Qt's event loop. Entry point:
``app.run_gui``.
"""
