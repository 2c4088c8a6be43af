"""The settings and the engine's parameter dataclasses are one source: a setting takes its default from
the dataclass field of its name, and wiring passes every one of them on by name."""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields

from voiceagent_desktop.config import Settings, TurnSettings, VADSettings
from voiceagent_desktop.engine.continuation import MergeParams
from voiceagent_desktop.engine.conversation import ConversationSettings
from voiceagent_desktop.engine.turn import TurnParams
from voiceagent_desktop.engine.vad import VADParams
from voiceagent_desktop.wiring import conversation_settings

#: Settings of the sections that are not engine parameters (which models run, and how a reply starts).
NOT_PARAMS = {"model", "model_path", "speculative_start", "detector", "merge_secs", "merge_heard_secs"}
#: A value other than the default for every parameter a user can set.
CHANGED = {
    "vad": {"confidence": 0.6, "start_secs": 0.2, "stop_secs": 0.064, "min_volume_db": -45.0},
    "turn": {"threshold": 0.55, "disagree_secs": 0.9, "fallback_secs": 2.5, "silence_only_secs": 0.7,
             "text_low": 0.08, "long_secs": 1.2, "min_silence_secs": 0.25, "sure_threshold": 0.75,
             "unsure_secs": 0.4, "text_sure": None},
}  # fmt: skip


def test_each_setting_takes_its_default_from_the_engine_parameter_of_its_name() -> None:
    for params, section in ((VADParams, VADSettings), (TurnParams, TurnSettings)):
        defaults = {f.name: f.default for f in fields(params) if f.default is not MISSING}
        settable = set(section.model_fields) - NOT_PARAMS
        assert settable <= set(defaults), settable - set(defaults)
        assert {n: section.model_fields[n].default for n in settable} == {n: defaults[n] for n in settable}


def test_wiring_passes_every_setting_on_and_keeps_the_rest_at_the_engine_default() -> None:
    assert set(CHANGED["vad"]) == set(VADSettings.model_fields)
    assert set(CHANGED["turn"]) == set(TurnSettings.model_fields) - NOT_PARAMS
    conv = conversation_settings(Settings.model_validate(CHANGED))
    for got, default, changed in (
        (conv.vad, VADParams(), CHANGED["vad"]),
        (conv.turn, TurnParams(), CHANGED["turn"]),
    ):
        expected = asdict(default) | changed
        assert asdict(got) == expected
        assert all(expected[k] != v for k, v in asdict(default).items() if k in changed)
    assert conversation_settings(Settings()).vad == VADParams()
    assert conversation_settings(Settings()).turn == TurnParams()


def test_the_reply_start_and_merge_settings_reach_the_conversation() -> None:
    default = conversation_settings(Settings())
    assert default.speculative_start is ConversationSettings().speculative_start is True
    assert default.merge == MergeParams()
    turn = {"speculative_start": False, "merge_secs": 0.9, "merge_heard_secs": 0.25}
    changed = conversation_settings(Settings.model_validate({"turn": turn}))
    assert not changed.speculative_start
    assert changed.merge == MergeParams(window_secs=0.9, heard_secs=0.25, enabled=True)
    off = conversation_settings(Settings.model_validate({"turn": {"merge_secs": 0}}))
    assert not off.merge.enabled
