"""ECE and Brier score against hand-computed values and scikit-learn's binary Brier loss."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from policylab.errors import PolicylabError
from policylab.graders.calibration import brier_score, expected_calibration_error


def test_ece_by_hand() -> None:
    # Confidences 0.9, 0.9 (bin 9: one right) and 0.6, 0.6 (bin 6: both right).
    proba = [[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]]
    y = [0, 0, 0, 1]
    # bin (0.8, 0.9]: accuracy 1/2, confidence 0.9 -> |0.5-0.9| = 0.4, weight 1/2
    # bin (0.5, 0.6]: accuracy 2/2, confidence 0.6 -> 0.4, weight 1/2
    assert expected_calibration_error(proba, y) == pytest.approx(0.4)


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    proba = [[1.0, 0.0]] * 3
    assert expected_calibration_error(proba, [0, 0, 0]) == pytest.approx(0.0)
    assert expected_calibration_error(proba, [1, 1, 1]) == pytest.approx(1.0)


def test_brier_matches_sklearn_for_two_classes() -> None:
    rng = np.random.default_rng(0)
    p1 = rng.random(50)
    y = rng.integers(0, 2, 50)
    proba = np.column_stack([1 - p1, p1])
    # The multi-class form counts both components: twice the binary loss.
    assert brier_score(proba, y) == pytest.approx(2 * brier_score_loss(y, p1))


def test_brier_by_hand_three_classes() -> None:
    assert brier_score([[0.5, 0.3, 0.2]], [0]) == pytest.approx(0.25 + 0.09 + 0.04)


def test_shapes_are_checked() -> None:
    with pytest.raises(PolicylabError, match="expected probabilities"):
        brier_score([0.5, 0.5], [0])
    with pytest.raises(PolicylabError, match="class indices"):
        expected_calibration_error([[0.5, 0.5]], [2])
