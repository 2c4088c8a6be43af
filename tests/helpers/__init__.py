"""What the tests share: scripted timelines (scenario), the GUI rig, waiting for a condition, speaking a
turn through the virtual devices, the in-memory keyring, recognising synthetic speech (asr)."""
