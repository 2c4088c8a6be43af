"""The app's files that are not code: its icon (SVG, and the PNG sizes rendered from it by
``scripts/render_icons``), its freedesktop desktop entry, the tray's icon per state
(``scripts/make_tray_icons``), the first-run test sound (``scripts/make_test_sound``) and the window's
style sheet. The package finds them as ``voiceagent_desktop.resources`` through ``importlib.resources``
(pyproject.toml maps this top-level folder to that package, so they ship in the wheel and in a bundle);
``voiceagent_desktop.assets`` answers paths."""
