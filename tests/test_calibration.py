"""Reliability bins and ECE on known values."""

from __future__ import annotations

import pytest

from qabot.calibration import ReliabilityBin, expected_calibration_error, reliability_bins


def test_reliability_bins_and_ece_on_known_values():
    pairs = [(0.05, False), (0.15, True), (0.15, False), (0.95, True), (1.0, True)]
    bins = reliability_bins(pairs)
    assert [(b.low, b.high, b.count) for b in bins] == [(0.0, 0.1, 1), (0.1, 0.2, 2), (0.9, 1.0, 2)]
    assert [b.mean_confidence for b in bins] == pytest.approx([0.05, 0.15, 0.975])
    assert [b.accuracy for b in bins] == [0.0, 0.5, 1.0]
    # (1 * |0.05 - 0| + 2 * |0.15 - 0.5| + 2 * |0.975 - 1|) / 5
    assert expected_calibration_error(bins) == pytest.approx(0.16)
    assert expected_calibration_error(reliability_bins([(0.7, True)] * 7 + [(0.7, False)] * 3)) == pytest.approx(0.0)
    assert expected_calibration_error(()) is None


def test_bin_edges_fall_in_the_upper_bin():
    bins = reliability_bins([(0.0, True), (0.1, True), (0.5, False), (0.9999, True)])
    assert [(b.low, b.count) for b in bins] == [(0.0, 1), (0.1, 1), (0.5, 1), (0.9, 1)]
    assert ReliabilityBin(0.9, 1.0, 1, 0.9999, 1.0) in bins
