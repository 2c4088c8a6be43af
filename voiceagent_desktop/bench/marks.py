"""The marks that start each benchmark's section of docs/benchmarks.md (``report.replace_section``)."""

CLOUD_MARK = "<!-- cloud profile: `voiceagent bench --profile cloud-fake --json cloud.json --markdown …` -->"
TURN_MARK = "<!-- turn benchmark: `voiceagent bench turn --json turn.json --markdown docs/benchmarks.md` -->"
TOOLS_MARK = "<!-- tool benchmark: `voiceagent bench tools --json tools.json --markdown …` -->"
GUI_MARK = "<!-- window cost: `voiceagent bench --gui --json gui.json --markdown docs/benchmarks.md` -->"
PROVIDERS_MARK = (
    "<!-- cloud TTS providers: `voiceagent bench providers --json providers.json --markdown …` -->"
)
ECHO_MARK = "<!-- echo rig: `voiceagent bench echo --json echo.json --markdown docs/benchmarks.md` -->"
SOAK_MARK = "<!-- soak: `voiceagent bench soak --json soak.json --markdown docs/benchmarks.md` -->"
RECORDING_MARK = (
    "<!-- recording: `voiceagent bench recording --json recording.json --markdown docs/benchmarks.md` -->"
)
MEMORY_MARK = "<!-- memory: `voiceagent bench memory --json memory.json --markdown docs/benchmarks.md` -->"
REPLAY_MARK = "<!-- replay: `voiceagent bench replay --json replay.json --markdown docs/benchmarks.md` -->"
#: written by hand (packaging/: build, smoke, coldstart): a mark so no bench's section runs into it
PACKAGING_MARK = "<!-- packaging: packaging/build, packaging/smoke, packaging/coldstart (by hand) -->"
SECTION_MARKS = (
    TURN_MARK,
    CLOUD_MARK,
    TOOLS_MARK,
    GUI_MARK,
    PROVIDERS_MARK,
    ECHO_MARK,
    PACKAGING_MARK,
    SOAK_MARK,
    RECORDING_MARK,
    REPLAY_MARK,
    MEMORY_MARK,
)  # sections other commands rewrite, after the main one
