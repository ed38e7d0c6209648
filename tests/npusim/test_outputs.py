"""The numerics check's rule and its worst element, worked by hand (`npusim.outputs`)."""

import json

import numpy as np

from npusim import outputs


def _check(sim, ref, rtol, atol):
    check = outputs.numerics_check({"torch": {"out": np.asarray(ref, np.float64)}},
                                   {"out": np.asarray(sim, np.float64)}, rtol, atol)
    return check, check["comparisons"][0]


def test_a_relative_error_above_rtol_that_atol_covers_reads_as_a_match():
    # ref 0.01, sim 0.01026: relative 2.6e-2 > rtol 0.02, yet |sim - ref| = 2.6e-4 <= 1e-4 + 0.02 * 0.01.
    check, row = _check([[1.0, 0.01026], [2.0, 4.0]], [[1.0, 0.01], [2.0, 4.0]], rtol=0.02, atol=1e-4)
    assert check["match"] and row["match"] and check["rule"] == "|sim - ref| <= atol + rtol * |ref|"
    assert np.isclose(row["max_rel_error"], 2.6e-2)
    worst = row["worst"]
    assert worst["index"] == [0, 1] and (worst["sim"], worst["ref"]) == (0.01026, 0.01)
    assert np.isclose(worst["allowed"], 3e-4) and np.isclose(worst["margin"], 4e-5)
    assert row["failing"] == 0 and row["elements"] == 4
    assert outputs.comparison_text(row).splitlines() == [
        "    max |sim - ref| = 2.600e-04, max relative (where |ref| > atol) = 2.600e-02",
        "    rule |sim - ref| <= atol + rtol * |ref|; nearest to the limit: out[0, 1], sim 0.01026, "
        "ref 0.01: |sim - ref| = 2.600e-04, allowed 3.000e-04, within by 4.000e-05: match",
    ]
    json.dumps(check, allow_nan=False)  # the JSON record carries the rule and the worst element


def test_a_mismatch_names_the_element_furthest_past_the_limit_and_how_many_fail():
    # Allowed: 0.1 + 0.1 * |ref|. [1] is 0.5 over 0.2 (0.3 over), [2] 0.25 over 0.1 (0.15 over).
    check, row = _check([1.0, 1.5, 0.25, 3.0], [1.0, 1.0, 0.0, 3.0], rtol=0.1, atol=0.1)
    assert not check["match"] and row["failing"] == 2
    assert row["worst"]["index"] == [1] and np.isclose(row["worst"]["margin"], -0.3)
    assert outputs.comparison_text(row).splitlines()[1] == (
        "    rule |sim - ref| <= atol + rtol * |ref|; furthest past the limit: out[1], sim 1.5, ref 1: "
        "|sim - ref| = 5.000e-01, allowed 2.000e-01, over by 3.000e-01; 2 of 4 element(s) over: MISMATCH")


def test_nan_fails_without_a_margin_and_equal_infinities_pass():
    check, row = _check([np.inf, 2.0, np.nan], [np.inf, 2.0, 1.0], rtol=1e-5, atol=1e-5)
    assert not row["match"] and row["failing"] == 1
    assert row["worst"]["index"] == [2] and row["worst"]["margin"] is None
    text = outputs.comparison_text(row)
    assert text.endswith("out[2], sim nan, ref 1: |sim - ref| = nan, allowed 2.000e-05, not comparable "
                         "(NaN or infinity); 1 of 3 element(s) over: MISMATCH")
    _, row = _check([np.inf, 2.0], [np.inf, 2.0], rtol=1e-5, atol=1e-5)
    assert row["match"] and row["worst"]["index"] == [1] and row["worst"]["margin"] == 1e-5 + 2e-5
