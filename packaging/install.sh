#!/bin/sh
# Install Voice Agent Desktop from this folder for the current user, no root:
#   ./install.sh              the app into ~/.local/lib/voiceagent-desktop, the command ~/.local/bin/voiceagent,
#                             the desktop entry and icon under ~/.local/share (the application menu)
#   ./install.sh --uninstall  remove all of that again (your settings and conversations stay)
# The system needs PortAudio and the Qt xcb libraries (packaging/README.md lists the packages per distro).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
lib="$HOME/.local/lib/voiceagent-desktop"
bin="$HOME/.local/bin"

if [ "${1:-}" = "--uninstall" ]; then
  [ -x "$lib/voiceagent" ] && "$lib/voiceagent" desktop-entry remove || true
  rm -rf "$lib"
  [ -L "$bin/voiceagent" ] && rm -f "$bin/voiceagent"
  echo "Voice Agent Desktop removed."
  exit 0
fi

mkdir -p "$HOME/.local/lib" "$bin"
rm -rf "$lib.new"
cp -a "$here/app" "$lib.new"
rm -rf "$lib"
mv "$lib.new" "$lib"
ln -sf "$lib/voiceagent" "$bin/voiceagent"
XDG_DATA_HOME="$data_home" "$lib/voiceagent" desktop-entry install
echo "Installed: $bin/voiceagent (and Voice Agent Desktop in the application menu)."
case ":$PATH:" in *":$bin:"*) ;; *) echo "Note: $bin is not on your PATH; start it from the menu or as $lib/voiceagent." ;; esac
