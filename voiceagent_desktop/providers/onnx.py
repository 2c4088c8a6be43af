"""onnxruntime sessions as the ONNX providers (Silero VAD, Smart Turn) use them."""

from __future__ import annotations

import os
from typing import Any

from ..errors import ModelLoadError


def single_thread_session(ort: Any, path: str, what: str, *, arena: bool = True) -> Any:
    """An onnxruntime CPU session on one thread (the caller's), or ModelLoadError naming ``what``.
    ``arena=False`` frees activations after each run (worth it for large, occasional inferences)."""
    if not os.path.isfile(path):
        raise ModelLoadError(f"{what} model file not found: {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    if not arena:
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
    try:
        return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ModelLoadError(f"Could not load the {what} model {path}: {e}") from e
