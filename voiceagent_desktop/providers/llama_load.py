"""Constructing a ``llama_cpp.Llama`` safely on every CPU.

On CPUs with AMX (Intel Sapphire Rapids and later), a llama.cpp built for the machine (the default when
pip compiles llama-cpp-python) repacks quantised weights into its AMX buffer type, and the first
completion then segfaults in ``ggml_backend_amx_mul_mat`` (ggml-org/llama.cpp#20824; seen here with the
Q4_1 SmolLM2 on a Xeon with AMX_INT8). Where llama.cpp reports AMX, ``new_llama`` loads the model with
``use_extra_bufts`` off, so the weights stay in ordinary CPU buffers (AVX-512 kernels, no repacking);
elsewhere it changes nothing. llama-cpp-python has no argument for that model parameter, so its default
parameters are wrapped for the duration of the constructor, under a lock.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
_lock = threading.Lock()


@functools.cache
def has_amx(llama_cpp: Any) -> bool:
    """Whether this llama.cpp build runs AMX kernels on this CPU (its system info says AMX_INT8 = 1)."""
    try:
        info = llama_cpp.llama_print_system_info()
    except Exception:
        return False
    text = info.decode(errors="replace") if isinstance(info, bytes) else str(info)
    return "AMX_INT8 = 1" in text


def _without_repacking(original: Callable[[], Any]) -> Callable[[], Any]:
    def defaults() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    return defaults


def disable_repacking_for_process(llama_cpp: Any) -> None:
    """For a process that only serves llama.cpp (``testing/llama_server.py``): every model it loads
    from now on skips AMX repacking, where AMX is in use."""
    if has_amx(llama_cpp):
        low = llama_cpp.llama_cpp
        low.llama_model_default_params = _without_repacking(low.llama_model_default_params)


def new_llama(llama_cpp: Any, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(**kwargs)``, with AMX weight repacking off where AMX is in use."""
    if not has_amx(llama_cpp):
        return llama_cpp.Llama(**kwargs)
    low = llama_cpp.llama_cpp  # the ctypes module whose default parameters Llama.__init__ reads
    with _lock:
        original = low.llama_model_default_params
        low.llama_model_default_params = _without_repacking(original)
        try:
            log.debug("AMX present: loading %s without extra buffer types", kwargs.get("model_path"))
            return llama_cpp.Llama(**kwargs)
        finally:
            low.llama_model_default_params = original
