"""What this CPU can run fast: the feature probe the training loop and the benchmarks share."""

from __future__ import annotations

__all__ = ["native_bf16"]


def native_bf16() -> bool:
    """True when oneDNN reports native bfloat16 support (AMX / AVX512-BF16)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
