"""Which treatment an endpoint gets: a stable hash of (campaign id, endpoint id), so a split
is the same on every run, every scheduler and every machine, and can be recomputed later.

The hash maps each endpoint to a point of [0, 1): the first ``holdout_percent`` of the range
is the holdout; the rest is cut among the treatments in proportion to their percents.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import HOLDOUT

_MASK = (1 << 64) - 1
_SCALE = float(1 << 64)


def point(campaign_id: int, endpoint_id: int) -> float:
    """A uniform, stable point of [0, 1) for this campaign and endpoint: SplitMix64's
    finaliser (a full-avalanche 64-bit mix) of the two ids; the same on every machine and
    release, and a few times cheaper per endpoint than a cryptographic hash."""
    z = ((campaign_id * 0x9E3779B97F4A7C15) ^ endpoint_id) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) / _SCALE


class Splitter:
    """Assigns endpoints of one campaign: :data:`~.model.HOLDOUT` or a treatment number."""

    def __init__(self, campaign_id: int, holdout_percent: float, percents: Sequence[float]) -> None:
        self.campaign_id = campaign_id
        self._holdout = holdout_percent / 100.0
        total = float(sum(percents))
        bounds = []
        running = 0.0
        for p in percents:
            running += p / total
            bounds.append(running)
        bounds[-1] = 1.0
        self._bounds = bounds

    @property
    def trivial(self) -> bool:
        """One treatment and no holdout: every endpoint gets treatment 0."""
        return len(self._bounds) == 1 and self._holdout == 0.0

    def treatment(self, endpoint_id: int) -> int:
        u = point(self.campaign_id, endpoint_id)
        if u < self._holdout:
            return HOLDOUT
        v = (u - self._holdout) / (1.0 - self._holdout)
        for number, bound in enumerate(self._bounds):
            if v < bound:
                return number
        return len(self._bounds) - 1
