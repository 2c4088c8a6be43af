"""The app's files that are not code: its icon (SVG, and the PNG sizes rendered from it by
``scripts/render_icons``) and its freedesktop desktop entry. The package finds them as
``voiceagent_desktop.resources`` through ``importlib.resources`` (pyproject.toml maps this top-level folder
to that package, so they ship in the wheel and in a bundle); ``voiceagent_desktop.assets`` answers paths."""
