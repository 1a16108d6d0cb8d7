"""Calibration of a confidence: the reliability diagram's bins and the expected calibration error."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CALIBRATION_BINS = 10


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Shown answers whose confidence lies in [low, high) (the last bin includes 1.0)."""

    low: float
    high: float
    count: int
    mean_confidence: float
    accuracy: float  # share whose first passage hits


def reliability_bins(pairs: Iterable[tuple[float, bool]], bins: int = CALIBRATION_BINS) -> tuple[ReliabilityBin, ...]:
    """(confidence, correct) pairs grouped into `bins` equal-width bins over [0, 1]; the non-empty ones.

    The reliability diagram of DeGroot and Fienberg (1983), as used by Guo et al. (2017), "On Calibration of
    Modern Neural Networks". Confidence 1.0 falls in the last bin; values outside [0, 1] in the nearest one.
    """
    counts, confidence_sums, correct_sums = [0] * bins, [0.0] * bins, [0] * bins
    for confidence, correct in pairs:
        index = min(max(int(confidence * bins), 0), bins - 1)
        counts[index] += 1
        confidence_sums[index] += confidence
        correct_sums[index] += correct
    return tuple(
        ReliabilityBin(i / bins, (i + 1) / bins, counts[i], confidence_sums[i] / counts[i], correct_sums[i] / counts[i])
        for i in range(bins)
        if counts[i]
    )


def expected_calibration_error(bins: Sequence[ReliabilityBin]) -> float | None:
    """ECE: the count-weighted mean |mean confidence - accuracy| of the bins (Naeini et al., 2015); None if empty."""
    total = sum(b.count for b in bins)
    if not total:
        return None
    return sum(b.count * abs(b.mean_confidence - b.accuracy) for b in bins) / total
