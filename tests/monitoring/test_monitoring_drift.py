"""drift(): verdicts on same and shifted data, method choice, options, and awkward input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.monitoring.conftest import make_frame

from keel.errors import InvalidInput, NotFound
from keel.monitoring import choose_method, drift

# -- verdicts -----------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [300, 20_000])
def test_same_distribution_with_other_seeds_is_not_flagged(rows: int) -> None:
    for seed in range(3):
        report = drift(make_frame(rows, seed=seed), make_frame(rows, seed=seed + 100))
        assert not report.dataset_drifted
        # p < 0.05 flags about 1 in 20 unchanged columns by chance; distances, none.
        allowed = 1 if rows <= 1000 else 0
        assert report.drifted_columns <= allowed, [c for c in report.columns if c.drifted]


@pytest.mark.parametrize("rows", [300, 20_000])
def test_clearly_shifted_data_is_flagged(rows: int) -> None:
    ref = make_frame(rows, seed=1)
    cur = make_frame(rows, seed=2, shift=1.0, new_category=True)
    report = drift(ref, cur)
    flagged = {c.column for c in report.columns if c.drifted}
    assert {"x", "y", "colour"} <= flagged
    assert report.dataset_drifted
    if rows > 1000:  # distances do not flag the unchanged columns
        assert "level" not in flagged
        assert "flag" not in flagged
        assert report.share == pytest.approx(3 / 5)


def test_drift_share_decides_the_dataset_verdict() -> None:
    ref, cur = make_frame(2000, seed=1), make_frame(2000, seed=2, shift=1.0, new_category=True)
    assert drift(ref, cur, drift_share=0.6).dataset_drifted  # 3/5 >= 0.6
    assert not drift(ref, cur, drift_share=0.61).dataset_drifted


def test_methods_follow_the_documented_rule(small_ref: pd.DataFrame) -> None:
    small = {c.column: c.method for c in drift(small_ref, small_ref).columns}
    assert small == {
        "x": "ks",
        "y": "ks",
        "colour": "chisquare",
        "level": "chisquare",  # integers with 3 distinct values are categories
        "flag": "chisquare",
    }
    big = make_frame(1001, seed=5)
    large = {c.column: c.method for c in drift(big, big).columns}
    assert large["x"] == "wasserstein"
    assert large["colour"] == "jensenshannon"
    assert large["level"] == "jensenshannon"
    assert large["flag"] == "jensenshannon"
    assert choose_method("numeric", 1000) == "ks"
    assert choose_method("categorical", 1001) == "jensenshannon"


def test_a_column_method_and_a_threshold_can_be_set(small_ref: pd.DataFrame) -> None:
    cur = make_frame(400, seed=9, shift=0.2)
    report = drift(small_ref, cur, methods={"x": "psi", "colour": "jensenshannon"})
    assert report.column("x").method == "psi"
    assert report.column("colour").method == "jensenshannon"
    strict = drift(small_ref, cur, methods={"x": "psi"}, thresholds={"psi": 1e-9})
    assert strict.column("x").drifted
    assert strict.column("x").threshold == 1e-9
    lax = drift(small_ref, cur, methods={"x": "psi"}, thresholds={"psi": 100})
    assert not lax.column("x").drifted


def test_prediction_and_target_are_reported_apart() -> None:
    ref = make_frame(3000, seed=1).assign(pred=lambda f: f.x * 2, label=lambda f: f.flag)
    cur = make_frame(3000, seed=2).assign(pred=lambda f: f.x * 2 + 3, label=lambda f: f.flag)
    report = drift(ref, cur, prediction="pred", target="label")
    assert report.prediction is not None
    assert report.prediction.drifted
    assert report.target is not None
    assert not report.target.drifted
    assert {c.column for c in report.columns} == {"x", "y", "colour", "level", "flag"}
    assert report.column("pred") is report.prediction
    with pytest.raises(InvalidInput, match="no column 'nope'"):
        drift(ref, cur, prediction="nope")


def test_multivariate_drift_sees_a_joint_change_the_columns_hide() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=3000)
    ref = pd.DataFrame({"a": a, "b": a + rng.normal(0, 0.1, 3000)})
    b = rng.normal(size=3000)
    cur = pd.DataFrame({"a": b, "b": -b + rng.normal(0, 0.1, 3000)})  # same marginals
    report = drift(ref, cur, multivariate=True)
    assert report.drifted_columns == 0
    assert report.multivariate is not None
    assert report.multivariate.drifted
    assert report.multivariate.roc_auc > 0.9
    same = drift(ref, ref.sample(frac=1.0, random_state=1), multivariate=True)
    assert same.multivariate is not None
    assert not same.multivariate.drifted


def test_column_lookup_of_an_unknown_name_is_not_found(small_ref: pd.DataFrame) -> None:
    with pytest.raises(NotFound):
        drift(small_ref, small_ref).column("nope")


def test_the_report_serialises_to_json(small_ref: pd.DataFrame) -> None:
    import json

    data = json.loads(drift(small_ref, small_ref, multivariate=True).to_json())
    assert data["share"] == 0.0
    assert len(data["columns"]) == 5
    assert data["multivariate"]["columns"] == ["x", "y", "colour", "level", "flag"]


# -- inputs -------------------------------------------------------------------------------


def test_arrow_tables_and_parquet_paths_give_the_same_report(
    small_ref: pd.DataFrame, small_same: pd.DataFrame, tmp_path: Path
) -> None:
    small_ref.to_parquet(tmp_path / "ref.parquet")
    small_same.to_parquet(tmp_path / "cur.parquet")
    by_frame = drift(small_ref, small_same).to_dict()
    assert drift(pa.Table.from_pandas(small_ref), pa.Table.from_pandas(small_same)).to_dict() == (
        by_frame
    )
    assert drift(tmp_path / "ref.parquet", str(tmp_path / "cur.parquet")).to_dict() == by_frame


def test_wrong_inputs_are_invalid(small_ref: pd.DataFrame, tmp_path: Path) -> None:
    (tmp_path / "bad.parquet").write_text("not parquet")
    cases = [
        (lambda: drift([1, 2], small_ref), "pass a pandas DataFrame"),
        (lambda: drift(small_ref, tmp_path / "missing.parquet"), "does not exist"),
        (lambda: drift(small_ref, tmp_path / "bad.parquet"), "not readable Parquet"),
        (lambda: drift(small_ref.iloc[:0], small_ref), "reference data has no rows"),
        (lambda: drift(small_ref, small_ref.iloc[:0]), "current data has no rows"),
        (lambda: drift(small_ref, pd.DataFrame(index=[0, 1])), "has no columns"),
        (lambda: drift(small_ref, pd.DataFrame({"q": [1.0]})), "no column in common"),
        (lambda: drift(small_ref, small_ref, columns=["x", "zz"]), "no column 'zz'"),
        (lambda: drift(small_ref, small_ref, columns=[]), "columns is empty"),
        (lambda: drift(small_ref, small_ref, columns="x"), "list of column names"),
        (lambda: drift(small_ref, small_ref, methods={"x": "t-test"}), "unknown drift method"),
        (lambda: drift(small_ref, small_ref, methods={"zz": "ks"}), "not compared: zz"),
        (lambda: drift(small_ref, small_ref, methods={"colour": "ks"}), "needs a numeric"),
        (lambda: drift(small_ref, small_ref, thresholds={"ks": 0}), r"in \(0, 1\]"),
        (lambda: drift(small_ref, small_ref, thresholds={"ks": 2}), r"in \(0, 1\]"),
        (lambda: drift(small_ref, small_ref, thresholds={"psi": float("inf")}), "finite"),
        (lambda: drift(small_ref, small_ref, thresholds={"psi": "0.1"}), "must be a number"),
        (lambda: drift(small_ref, small_ref, thresholds={"foo": 0.1}), "unknown method"),
        (lambda: drift(small_ref, small_ref, drift_share=0), "drift_share"),
        (lambda: drift(small_ref, small_ref, drift_share=float("nan")), "drift_share"),
        (lambda: drift(small_ref, small_ref, bins=0), "bins must be"),
        (lambda: drift(small_ref, small_ref, bins=10**9), "bins must be"),
        (lambda: drift(small_ref, small_ref, quantiles=1), "quantiles must be"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidInput, match=message):
            call()


def test_repeated_column_names_are_invalid() -> None:
    frame = pd.DataFrame([[1.0, 2.0]], columns=["a", "a"])
    with pytest.raises(InvalidInput, match="repeats column names: a"):
        drift(frame, frame)


def test_columns_on_one_side_only_are_listed(small_ref: pd.DataFrame) -> None:
    cur = small_ref.drop(columns=["y"]).assign(extra=1.0)
    report = drift(small_ref, cur)
    assert report.missing_columns == ("y",)
    assert report.extra_columns == ("extra",)
    assert {c.column for c in report.columns} == {"x", "colour", "level", "flag"}


# -- awkward values -----------------------------------------------------------------------


def test_nan_and_infinities_are_left_out_of_the_statistics() -> None:
    from scipy import stats as sp

    rng = np.random.default_rng(3)
    ref_values = rng.normal(size=800)
    cur_values = rng.normal(size=600)
    dirty = cur_values.copy()
    dirty[:50] = np.nan
    dirty[50:60] = np.inf
    dirty[60:70] = -np.inf
    result = drift(pd.DataFrame({"v": ref_values}), pd.DataFrame({"v": dirty})).column("v")
    assert result.n_current == 530
    assert result.p_value == pytest.approx(sp.ks_2samp(ref_values, cur_values[70:]).pvalue)


def test_columns_without_usable_values_are_skipped_with_a_reason() -> None:
    ref = pd.DataFrame({"ok": np.arange(100.0), "empty": np.nan, "inf": np.inf, "s": "a"})
    cur = pd.DataFrame({"ok": np.arange(100.0), "empty": np.nan, "inf": 1.0, "s": None})
    report = drift(ref, cur)
    assert [c.column for c in report.columns] == ["ok"]
    assert report.skipped == {
        "empty": "reference: no finite values",
        "inf": "reference: no finite values",
        "s": "current: no non-missing values",
    }
    with pytest.raises(InvalidInput, match="no column can be compared"):
        drift(ref[["empty"]], cur[["empty"]])


def test_a_constant_column_is_categorical_and_shows_a_new_value() -> None:
    ref = pd.DataFrame({"k": np.full(2000, 7.0)})
    same = drift(ref, pd.DataFrame({"k": np.full(1500, 7.0)})).column("k")
    assert same.kind == "categorical"
    assert same.statistic == 0.0
    assert not same.drifted
    moved = drift(ref, pd.DataFrame({"k": np.r_[np.full(1000, 7.0), np.full(500, 8.0)]}))
    assert moved.column("k").drifted
    constant_ks = drift(ref, pd.DataFrame({"k": np.full(10, 7.0)}), methods={"k": "wasserstein"})
    assert constant_ks.column("k").statistic == 0.0


def test_mixed_types_datetimes_and_type_changes_are_skipped() -> None:
    ref = pd.DataFrame(
        {
            "mixed": pd.Series(["a", 1, 2.5] * 10, dtype=object),
            "when": pd.date_range("2026-01-01", periods=30, freq="h"),
            "changed": np.arange(30.0),
            "fine": np.arange(30.0),
        }
    )
    cur = ref.assign(changed=[str(i) for i in range(30)])
    report = drift(ref, cur)
    assert [c.column for c in report.columns] == ["fine"]
    assert "mixed" in report.skipped["mixed"]
    assert "unsupported dtype datetime64" in report.skipped["when"]
    assert report.skipped["changed"] == (
        "type changed: number in the reference, string in the current data"
    )


def test_object_numbers_nullable_and_category_dtypes_are_understood() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=300)
    ref = pd.DataFrame(
        {
            "obj": pd.Series(list(values), dtype=object),
            "nullable": pd.array(rng.integers(0, 50, 300), dtype="Int64"),
            "cat": pd.Categorical(rng.choice(["a", "b"], 300)),
        }
    )
    ref.loc[0, "nullable"] = pd.NA
    report = drift(ref, ref)
    assert {c.column: c.kind for c in report.columns} == {
        "obj": "numeric",
        "nullable": "numeric",
        "cat": "categorical",
    }
    assert report.column("nullable").n_reference == 299
    assert report.drifted_columns == 0


def test_hostile_names_and_many_categories_work() -> None:
    rng = np.random.default_rng(0)
    name = "<script>alert(1)</script>'; DROP TABLE x; --"
    ref = pd.DataFrame({name: rng.integers(0, 100_000, 50_000).astype(str)})
    cur = pd.DataFrame({name: rng.integers(0, 100_000, 50_000).astype(str)})
    result = drift(ref, cur).column(name)
    assert result.method == "jensenshannon"
    assert result.distribution is not None
    assert len(result.distribution.labels) == 20
    assert result.distribution.labels[-1] == "(other)"


def test_a_wide_frame_is_compared_column_by_column() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(rng.normal(size=(200, 500)), columns=[f"c{i}" for i in range(500)])
    cur = pd.DataFrame(rng.normal(size=(150, 500)), columns=[f"c{i}" for i in range(500)])
    report = drift(ref, cur)
    assert len(report.columns) == 500
    assert report.drifted_columns < 50  # ~5 % false positives at p < 0.05
    assert not report.dataset_drifted


def test_values_near_the_float_limit_give_defined_results() -> None:
    import json

    from keel.monitoring import profile

    frame = pd.DataFrame({"v": [1.7e308, -1.7e308, 0.0, 1.0, 2.0, 3.0, 4.0] * 10})
    stored = profile(frame)
    json.loads(stored.to_json())  # finite numbers only
    same = drift(frame, frame)
    assert not same.column("v").drifted
    assert all("nan" not in label for label in same.column("v").distribution.labels)
    halved = frame.assign(v=frame.v * 0.5)
    raw = drift(frame, halved, methods={"v": "wasserstein"})
    assert raw.column("v").drifted
    assert json.loads(raw.to_json())["columns"][0]["statistic"] is None  # inf
    with pytest.raises(InvalidInput, match="v: statistic undefined: the values overflow"):
        drift(stored, halved, methods={"v": "wasserstein"})  # its only column is undefined
