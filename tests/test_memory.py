"""_memory.empty_large: a plain, writable tensor of the asked shape whatever the huge-page hint does."""

from __future__ import annotations

import torch

from hyperland._memory import empty_large


def test_large_and_small_buffers_behave_like_empty() -> None:
    for shape in ((3, 5), (4, 960, 24, 24)):  # below and above the 8 MiB hint threshold
        t = empty_large(shape, dtype=torch.float32, device=torch.device("cpu"))
        assert t.shape == shape and t.dtype == torch.float32 and t.is_contiguous()
        t.fill_(1.5)
        assert float(t.sum()) == 1.5 * t.numel()


def test_other_dtypes() -> None:
    t = empty_large((2, 3840, 24, 24), dtype=torch.float16, device=torch.device("cpu"))
    t.zero_()
    assert t.dtype == torch.float16 and not t.any()
