"""Reference profiles: contents, JSON round trip, drift from a profile, hostile JSON."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.monitoring.conftest import make_frame

from keel.errors import InvalidInput
from keel.monitoring import ReferenceProfile, drift, profile


@pytest.fixture
def ref() -> pd.DataFrame:
    return make_frame(5000, seed=1)


def test_a_profile_holds_counts_sketches_and_categories(ref: pd.DataFrame) -> None:
    frame = ref.copy()
    frame.loc[:9, "x"] = np.nan
    frame.loc[10:14, "x"] = np.inf
    p = profile(frame, bins=10, quantiles=11)
    x = p.columns["x"]
    assert (x.kind, x.family, x.count, x.missing, x.non_finite) == (
        "numeric",
        "number",
        4985,
        10,
        5,
    )
    finite = frame.x[np.isfinite(frame.x)]
    assert x.numeric is not None
    assert x.numeric.min == finite.min()
    assert x.numeric.max == finite.max()
    assert x.numeric.std == pytest.approx(np.std(finite), rel=1e-12)
    expected = np.quantile(finite, np.linspace(0, 1, 11))
    assert list(x.numeric.quantiles) == pytest.approx(list(expected))
    assert len(x.numeric.histogram) == 12
    assert sum(x.numeric.histogram) == 4985
    assert x.numeric.histogram[0] == x.numeric.histogram[-1] == 0
    colour = p.columns["colour"]
    assert colour.kind == "categorical"
    counts = dict(zip(colour.category_values, colour.category_counts, strict=True))
    assert counts == frame.colour.value_counts().to_dict()
    assert p.columns["level"].kind == "categorical"
    assert p.columns["level"].category_values == (0.0, 1.0, 2.0)
    assert p.columns["flag"].category_values in ((False, True), (True, False))


def test_json_round_trip_is_lossless(ref: pd.DataFrame) -> None:
    p = profile(ref)
    again = ReferenceProfile.from_json(p.to_json())
    assert again == p
    assert ReferenceProfile.from_dict(json.loads(p.to_json())) == p


def test_binned_methods_from_a_profile_equal_the_raw_reference(ref: pd.DataFrame) -> None:
    cur = make_frame(3000, seed=2, shift=0.3, new_category=True)
    methods = {"x": "psi", "y": "jensenshannon", "colour": "chisquare", "level": "psi"}
    raw = drift(ref, cur, methods=methods)
    stored = drift(ReferenceProfile.from_json(profile(ref).to_json()), cur, methods=methods)
    for name in methods:
        assert stored.column(name).statistic == pytest.approx(raw.column(name).statistic, abs=1e-12)
        assert stored.column(name).approximate is False
    assert stored.column("flag").statistic == pytest.approx(raw.column("flag").statistic)


def test_distances_through_the_sketch_are_close_and_flagged_approximate(
    ref: pd.DataFrame,
) -> None:
    cur = make_frame(4000, seed=2, shift=0.3)
    raw = drift(ref, cur, methods={"x": "ks"})
    stored = drift(profile(ref), cur, methods={"x": "ks"})
    assert stored.column("x").approximate
    assert abs(stored.column("x").statistic - raw.column("x").statistic) < 1 / 200
    assert stored.column("y").statistic == pytest.approx(raw.column("y").statistic, abs=0.02)
    assert [c.drifted for c in stored.columns] == [c.drifted for c in raw.columns]


def test_capped_categories_pool_into_other() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"c": rng.integers(0, 50, 5000).astype(str)})
    p = profile(frame, max_categories=10)
    c = p.columns["c"]
    assert c.capped
    assert len(c.category_values) == 10
    assert c.other + sum(c.category_counts) == 5000
    cur = pd.DataFrame({"c": rng.integers(0, 50, 5000).astype(str)})
    result = drift(p, cur).column("c")
    assert result.distribution is not None
    assert result.distribution.labels[-1] == "(other)"
    assert not result.drifted


def test_bad_settings_and_inputs_are_invalid(ref: pd.DataFrame) -> None:
    for kwargs, message in [
        ({"bins": 0}, "bins must be"),
        ({"bins": True}, "bins must be"),
        ({"quantiles": 1}, "quantiles must be"),
        ({"quantiles": 10**7}, "quantiles must be"),
        ({"max_categories": 0}, "max_categories must be"),
        ({"columns": ["x", "nope"]}, "no column 'nope'"),
        ({"columns": []}, "columns is empty"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            profile(ref, **kwargs)
    with pytest.raises(InvalidInput, match="no rows"):
        profile(ref.iloc[:0])
    with pytest.raises(InvalidInput, match="built with 30 bins"):
        drift(profile(ref), ref, bins=10)
    with pytest.raises(InvalidInput, match="needs the raw reference"):
        drift(profile(ref), ref, multivariate=True)


def _tampered(p: ReferenceProfile, change: Any) -> dict[str, Any]:
    data = copy.deepcopy(p.to_dict())
    change(data)
    return data


def test_hostile_profiles_fail_clearly(ref: pd.DataFrame) -> None:
    p = profile(ref, bins=5, quantiles=5)
    x = ("columns", "x")

    def at(data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        for key in path:
            data = data[key]
        return data

    cases = [
        (lambda d: d.update(format="other"), "not a Keel reference profile"),
        (lambda d: d.update(rows=-1), "rows must be a non-negative integer"),
        (lambda d: d.update(rows=0), "rows must be at least 1"),
        (lambda d: d.update(bins="5"), "bins must be"),
        (lambda d: d.update(columns=[]), "columns must be an object"),
        (lambda d: d.update(columns={}), "at least one column"),
        (lambda d: at(d, x).update(kind="magic"), "kind must be one of"),
        (lambda d: at(d, x).update(family="complex"), "family must be"),
        (lambda d: at(d, x).update(count=1.5), "count must be a non-negative"),
        (lambda d: at(d, x)["numeric"].update(quantiles=[1, 2]), "list of 5 numbers"),
        (lambda d: at(d, x)["numeric"]["quantiles"].reverse(), "must not decrease"),
        (lambda d: at(d, x)["numeric"].update(histogram=[1]), "must have 7 counts"),
        (lambda d: at(d, x)["numeric"]["histogram"].__setitem__(1, 10**9), "add up"),
        (lambda d: at(d, x)["numeric"].update(std=float("nan")), "must be finite"),
        (lambda d: at(d, x)["numeric"].update(std=-1.0), "must not be negative"),
        (lambda d: at(d, x)["numeric"].update(min=1e300), "disagree"),
        (lambda d: at(d, x).pop("numeric"), "no numeric sketch"),
        (lambda d: at(d, ("columns", "colour"))["categories"].update(values=[1, 2, 3]), "string"),
        (lambda d: at(d, ("columns", "colour"))["categories"].update(counts=[1]), "one count"),
        (lambda d: at(d, ("columns", "colour"))["categories"].update(other=10**6), "add up"),
        (lambda d: at(d, ("columns", "colour"))["categories"].update(capped="yes"), "true or"),
        (
            lambda d: at(d, ("columns", "colour"))["categories"].update(values=["a", "a", "b"]),
            "repeats",
        ),
    ]
    for change, message in cases:
        with pytest.raises(InvalidInput, match=message):
            ReferenceProfile.from_dict(_tampered(p, change))
    for text in ("", "{", "[1, 2]", "null", '"profile"', b"\xff\xfe"):
        with pytest.raises(InvalidInput):
            ReferenceProfile.from_json(text)
