"""Fleiss' kappa against the worked example of Fleiss (1971), as reproduced on Wikipedia."""

import pytest

from medops.scoring.agreement import fleiss_kappa

# 10 items, 14 raters, 5 categories: kappa = 0.210
FLEISS_EXAMPLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_worked_example():
    assert fleiss_kappa(FLEISS_EXAMPLE) == pytest.approx(0.2099, abs=5e-4)


def test_perfect_and_undefined_agreement():
    assert fleiss_kappa([[2, 0], [0, 2], [2, 0]]) == pytest.approx(1.0)
    assert fleiss_kappa([[1, 1], [1, 1]]) == pytest.approx(-1.0)
    assert fleiss_kappa([[3, 0], [3, 0]]) is None  # every rating "met": chance agreement is total
    assert fleiss_kappa([]) is None
    with pytest.raises(ValueError):
        fleiss_kappa([[2, 0], [1, 0]])
