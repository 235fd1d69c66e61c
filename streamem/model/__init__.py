"""The pure density model: :class:`OnlineGMM` (numpy and scipy only)."""

from __future__ import annotations

from streamem.model.gmm import OnlineGMM

__all__ = ["OnlineGMM"]
