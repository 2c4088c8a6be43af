"""The frozen app's entry point (packaging/voiceagent.spec): ``voiceagent`` with every command of the
installed one. A frozen executable is not a Python interpreter, so the two ways the app starts a child
Python of its own are served here too: ``-c CODE`` (``voiceagent doctor`` loads Qt in a child process)
runs that code; ``-m pip`` says plainly that a bundle has no pip (its models ship inside it)."""

from __future__ import annotations

import sys


def main() -> int:
    if len(sys.argv) >= 3 and sys.argv[1] == "-c":
        code, sys.argv = sys.argv[2], ["-c", *sys.argv[3:]]
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
        return 0
    if len(sys.argv) >= 3 and sys.argv[1] == "-m":
        print(f"voiceagent (bundle): no module {sys.argv[2]!r} in a frozen bundle", file=sys.stderr)
        return 1
    from voiceagent_desktop.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
