"""Shadow agreement: labels equal, floats close, rows whole, shapes and kinds respected."""

from __future__ import annotations

import numpy as np

from keel.deploy.serving_shadow import agreeing_rows, compare_outputs


def test_labels_agree_when_equal() -> None:
    assert agreeing_rows(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])) == (3, 4)
    assert agreeing_rows(np.array([True, False]), np.array([True, False])) == (2, 2)
    text = np.array([b"yes", b"no", b"yes"], dtype=object)
    assert agreeing_rows(text, np.array([b"yes", b"yes", b"yes"], dtype=object)) == (2, 3)


def test_floats_agree_when_close_and_nan_meets_nan() -> None:
    live = np.array([1.0, 2.0, np.nan, 1e-9])
    shadow = np.array([1.0 + 1e-9, 2.1, np.nan, 2e-9])
    assert agreeing_rows(live, shadow) == (3, 4)
    assert agreeing_rows(np.array([1, 2]), np.array([1.0, 2.5])) == (1, 2)


def test_a_row_agrees_only_if_all_its_values_do() -> None:
    live = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    shadow = np.array([[0.2, 0.8], [0.5, 0.6], [0.9, 0.1]])
    assert agreeing_rows(live, shadow) == (2, 3)


def test_different_shapes_or_kinds_agree_on_no_row() -> None:
    assert agreeing_rows(np.zeros(3), np.zeros(4)) == (0, 3)
    assert agreeing_rows(np.zeros((3, 2)), np.zeros(3)) == (0, 3)
    assert agreeing_rows(np.array([1, 0]), np.array([b"1", b"0"], dtype=object)) == (0, 2)
    assert agreeing_rows(np.zeros(0), np.zeros(0)) == (0, 0)


def test_compare_outputs_judges_predict_and_falls_back_to_shared_outputs() -> None:
    live = {"predict": np.array([1, 0, 1]), "predict_proba": np.zeros((3, 2))}
    shadow = {"predict": np.array([1, 1, 1]), "predict_proba": np.ones((3, 2))}
    assert compare_outputs(live, shadow) == (2, 3)  # predict alone decides
    only_proba = {"predict_proba": np.zeros((3, 2))}
    assert compare_outputs(only_proba, {"predict_proba": np.zeros((3, 2))}) == (3, 3)
    assert compare_outputs(live, {}) == (0, 3)
    assert compare_outputs({}, {}) == (0, 1)
