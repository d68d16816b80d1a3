"""The progress bar of batch loops over images (tqdm; shown only on a terminal unless asked)."""

from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(total: int, *, enabled: bool | None, desc: str) -> tqdm:
    """A tqdm bar over ``total`` images; ``enabled=None``: only when stderr is a terminal."""
    return tqdm(total=total, desc=desc, unit="img", disable=None if enabled is None else not enabled, leave=False)


__all__ = ["progress_bar"]
