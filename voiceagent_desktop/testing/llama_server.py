"""``python -m voiceagent_desktop.testing.llama_server ARGS``: ``llama_cpp.server`` (the real
OpenAI-compatible peer of the tests) with AMX weight repacking off where AMX is in use, which would
otherwise crash its first completion on such CPUs (providers/llama_load.py)."""

from __future__ import annotations

import runpy

import llama_cpp

from ..providers.llama_load import disable_repacking_for_process

if __name__ == "__main__":
    disable_repacking_for_process(llama_cpp)
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
