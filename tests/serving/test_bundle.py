"""Offline bundles: serve.py runs without Keel, verifies digests, predicts like the original."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.errors import InvalidInput
from keel.serving.bundle import bundle_model

SITE = sysconfig.get_paths()["purelib"]
# -I: no PYTHONPATH, user site or script folder; -S: site-packages' .pth files are not run,
# so Keel's editable install is invisible while numpy, scikit-learn… stay importable.
_BOOT = (
    "import runpy, sys; sys.path.append({site!r}); sys.argv = {argv!r}; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _without_keel(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = _BOOT.format(site=SITE, argv=list(argv))
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _serve(bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _without_keel(str(bundle / "serve.py"), *args, cwd=bundle.parent)


def test_keel_is_not_importable_where_the_runner_runs(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import numpy, sklearn, blake3\nimport keel\n")
    result = _without_keel(str(probe), cwd=tmp_path)
    assert result.returncode == 1
    assert "ModuleNotFoundError: No module named 'keel'" in result.stderr


def test_bundle_predicts_like_the_original(classifier: Any, tmp_path: Path) -> None:
    report = bundle_model(classifier.uri, tmp_path / "out")
    out = report.path
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == [
        "MANIFEST.json", "README.md", "model/keel-model.json", "model/model.joblib",
        "requirements.txt", "serve.py",
    ]  # fmt: skip
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["flavor"] == "sklearn"
    assert manifest["signature"]["inputs"]["kind"] == "dataframe"
    assert {f["path"] for f in manifest["files"]} == set(names) - {"MANIFEST.json", "serve.py"}
    requirements = (out / "requirements.txt").read_text().split()
    import sklearn

    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert all("==" in line for line in requirements)
    assert "keel" not in (out / "requirements.txt").read_text()

    assert _serve(out, "verify").stdout.startswith("ok: 4 files match")
    classifier.X.to_csv(tmp_path / "input.csv", index=False)
    classifier.X.to_parquet(tmp_path / "input.parquet")
    for source in ("input.csv", "input.parquet"):
        result = _serve(out, "predict", str(tmp_path / source))
        assert result.returncode == 0, result.stderr
        got = pd.read_csv(pd.io.common.StringIO(result.stdout))
        assert list(got.columns) == ["prediction", "probability_0", "probability_1"]
        np.testing.assert_array_equal(got["prediction"], classifier.estimator.predict(classifier.X))
        expected = classifier.estimator.predict_proba(classifier.X)
        np.testing.assert_allclose(got[["probability_0", "probability_1"]], expected, atol=1e-12)


def test_tensor_model_bundle(regressor: Any, tmp_path: Path) -> None:
    out = bundle_model(regressor.uri, tmp_path / "diabetes").path
    pd.DataFrame(regressor.X).to_csv(tmp_path / "x.csv", index=False)
    result = _serve(out, "predict", str(tmp_path / "x.csv"), "-o", str(tmp_path / "p.csv"))
    assert result.returncode == 0, result.stderr
    got = pd.read_csv(tmp_path / "p.csv")["prediction"]
    np.testing.assert_allclose(got, regressor.estimator.predict(regressor.X), rtol=1e-12)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = _serve(out, "predict", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith("error: the input has shape [1, 2], the model takes")


def test_onnx_model_bundle(classifier: Any, tmp_path: Path) -> None:
    pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")
    from keel.serving.export import export_onnx

    report = export_onnx(classifier.uri, tmp_path / "m.onnx", register="cancer-onnx")
    out = bundle_model(report.registered_uri, tmp_path / "onnx-bundle").path
    assert "onnxruntime==" in (out / "requirements.txt").read_text()
    classifier.X.to_csv(tmp_path / "input.csv", index=False)
    result = _serve(out, "predict", str(tmp_path / "input.csv"))
    assert result.returncode == 0, result.stderr
    got = pd.read_csv(pd.io.common.StringIO(result.stdout))
    np.testing.assert_array_equal(got["prediction"], classifier.estimator.predict(classifier.X))
    expected = classifier.estimator.predict_proba(classifier.X)
    np.testing.assert_allclose(got[["probability_0", "probability_1"]], expected, atol=1e-5)


@pytest.mark.parametrize("how", ["change", "add", "remove"])
def test_a_tampered_bundle_is_refused(classifier: Any, tmp_path: Path, how: str) -> None:
    out = bundle_model(classifier.uri, tmp_path / "out").path
    target = out / "model" / "model.joblib"
    if how == "change":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
        expected = "error: model/model.joblib does not match its digest in MANIFEST.json"
    elif how == "add":
        (out / "model" / "extra.pkl").write_bytes(b"surprise")
        expected = "error: model/extra.pkl is not listed in MANIFEST.json"
    else:
        target.unlink()
        expected = "error: model/model.joblib is missing"
    classifier.X.to_csv(tmp_path / "input.csv", index=False)
    for args in (("verify",), ("predict", str(tmp_path / "input.csv"))):
        result = _serve(out, *args)
        assert result.returncode == 3
        assert result.stdout == ""
        assert result.stderr.startswith(expected), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_http_server(classifier: Any, tmp_path: Path) -> None:
    out = bundle_model(classifier.uri, tmp_path / "out").path
    code = _BOOT.format(site=SITE, argv=[str(out / "serve.py"), "http", "--port", "0"])
    server = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", code],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = server.stdout.readline() if server.stdout else ""
        assert line.startswith("serving models:/cancer/1 on http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def post(body: bytes) -> tuple[int, Any]:
            conn.request("POST", "/invocations", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read())

        rows = classifier.X.iloc[:3]
        split = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
        status, document = post(json.dumps(split).encode())
        assert status == 200
        assert document["predictions"] == classifier.estimator.predict(rows).tolist()
        expected = classifier.estimator.predict_proba(rows)
        np.testing.assert_allclose(document["probabilities"], expected, atol=1e-12)
        records = {"dataframe_records": rows.to_dict(orient="records")}
        assert post(json.dumps(records).encode())[1]["predictions"] == document["predictions"]
        for body, fragment in (
            (b"{not json", "bad request"),
            (b'{"dataframe_split": {"columns": ["x"], "data": [[1]]}}', "lacks column"),
            (b'{"rows": []}', "unsupported request key"),
            (b"[1, 2]", "the body must be one of"),
        ):
            status, error = post(body)
            assert status == 400, body
            assert error["error_code"] == "INVALID_INPUT"
            assert fragment in error["message"]
        conn.request("GET", "/health")
        assert json.loads(conn.getresponse().read())["status"] == "ok"
        conn.close()
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_out_dir_rules(classifier: Any, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="is not empty"):
        bundle_model(classifier.uri, busy)
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    report = bundle_model(classifier.uri, busy, force=True)
    assert not (busy / "notes.txt").exists()
    assert (report.path / "serve.py").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="is not a folder"):
        bundle_model(classifier.uri, tmp_path / "file")
    with pytest.raises(InvalidInput, match="does not exist"):
        bundle_model(classifier.uri, tmp_path / "no" / "out")
    with pytest.raises(InvalidInput, match="invalid model URI"):
        bundle_model("nope", tmp_path / "new")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (bundle_model(classifier.uri, empty).path / "MANIFEST.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
