"""Serve this offline Keel model bundle: verify every file, then predict.

    python serve.py verify
    python serve.py predict INPUT.parquet|INPUT.csv|INPUT.json [-o OUTPUT.csv]
    python serve.py http [--host 127.0.0.1] [--port 8080]

Needs only the standard library and requirements.txt, never Keel. Every file listed in
MANIFEST.json must match its BLAKE3 digest, and model/ must hold no other file, before the
model is deserialised; otherwise the runner names the file and exits with status 3.
Bad input exits with status 2 and one ``error:`` line. The HTTP server binds 127.0.0.1
unless told otherwise and speaks a small JSON subset: ``POST /invocations`` with
``{"dataframe_split": {"columns": [...], "data": [[...]]}}``, ``{"dataframe_records":
[{...}]}`` or ``{"instances": [...]}``, answered with ``{"predictions": [...]}`` (and
``"probabilities"`` for a classifier); ``GET /health`` and ``GET /signature``.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
MAX_BODY = 16 * 1024 * 1024
_CHUNK = 1 << 20


class BundleError(Exception):
    """A problem reported as one line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def load_manifest() -> dict[str, Any]:
    try:
        manifest = json.loads((HERE / "MANIFEST.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read MANIFEST.json: {exc}", 3) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise BundleError("MANIFEST.json is malformed", 3)
    return manifest


def verify(manifest: dict[str, Any]) -> None:
    """Refuse (status 3) if any listed file changed or is missing, or model/ has extras."""
    import blake3

    listed = set()
    for entry in manifest["files"]:
        rel = Path(str(entry.get("path", "")))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise BundleError(f"MANIFEST.json names an unsafe path {rel}", 3)
        listed.add(rel.as_posix())
        path = HERE / rel
        if not path.is_file():
            raise BundleError(f"{rel} is missing; the bundle is incomplete, refusing to load", 3)
        hasher = blake3.blake3()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
        if hasher.hexdigest() != entry.get("digest"):
            raise BundleError(
                f"{rel} does not match its digest in MANIFEST.json; the bundle was changed "
                "after it was made, refusing to load it",
                3,
            )
    extra = sorted(
        p.relative_to(HERE).as_posix()
        for p in (HERE / "model").rglob("*")
        if p.is_file() and p.relative_to(HERE).as_posix() not in listed
    )
    if extra:
        raise BundleError(f"{extra[0]} is not listed in MANIFEST.json; refusing to load", 3)


def load_model(manifest: dict[str, Any]) -> Any:
    meta = manifest.get("flavor_meta") or {}
    flavor = manifest.get("flavor")
    name = Path(str(meta.get("file", ""))).name
    path = HERE / "model" / name
    if flavor == "sklearn":
        import joblib

        return joblib.load(path)
    if flavor == "pyfunc":
        import cloudpickle

        with path.open("rb") as handle:
            model = cloudpickle.load(handle)
        if callable(getattr(model, "load_context", None)):
            model.load_context(SimpleNamespace(directory=HERE / "model"))
        return model
    if flavor == "onnx":
        import onnxruntime

        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    raise BundleError(f"unknown flavor {flavor!r} in MANIFEST.json", 3)


def enforce(data: Any, signature: dict[str, Any] | None) -> Any:
    """Return ``data`` shaped and typed as the signature's inputs, or raise BundleError."""
    import numpy as np
    import pandas as pd

    if not signature:
        return data
    inputs = signature["inputs"]
    columns = inputs["columns"]
    if inputs["kind"] == "tensor":
        spec = columns[0]
        values = data.to_numpy() if isinstance(data, pd.DataFrame) else data
        try:
            array = np.asarray(values, dtype=_numpy_dtype(spec["dtype"]))
        except (TypeError, ValueError) as exc:
            raise BundleError(f"the input must be {spec['dtype']} numbers: {exc}") from None
        shape = spec.get("shape")
        wrong = bool(shape) and (
            array.ndim != len(shape)
            or any(w is not None and w != g for w, g in zip(shape, array.shape, strict=True))
        )
        if wrong:
            raise BundleError(f"the input has shape {list(array.shape)}, the model takes {shape}")
        return array
    if not isinstance(data, pd.DataFrame):
        data = pd.DataFrame(data, columns=[c["name"] for c in columns][: np.shape(data)[-1]])
    missing = [c["name"] for c in columns if c["name"] not in data and not c.get("optional")]
    if missing:
        raise BundleError(f"the input lacks column(s) {missing}; it has {list(data.columns)}")
    out = {}
    for spec in columns:
        name, dtype = spec["name"], spec["dtype"]
        column = data[name] if name in data else pd.Series([None] * len(data), dtype=object)
        if dtype.startswith(("float", "int", "uint")):
            types = pd.api.types
            numeric = types.is_numeric_dtype(column) and not types.is_bool_dtype(column)
            if not numeric and not column.isna().all():  # strings, bools: refused, not guessed
                raise BundleError(f"column {name!r} must hold numbers, found {column.dtype}")
            column = pd.to_numeric(column, errors="coerce").astype("float64")
            whole = not column.isna().any() and (column % 1 == 0).all()
            if dtype.startswith(("int", "uint")) and not whole:
                raise BundleError(f"column {name!r} must hold whole numbers ({dtype})")
            column = column.astype(_numpy_dtype(dtype))
        out[name] = column.to_numpy()
    return pd.DataFrame(out, index=range(len(data)))


def _numpy_dtype(name: str) -> str:
    return {"string": "object", "binary": "object", "datetime": "datetime64[ns]"}.get(name, name)


def predict(model: Any, manifest: dict[str, Any], data: Any) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    data = enforce(data, manifest.get("signature"))
    if len(data) == 0:
        raise BundleError("the input has no rows")
    if manifest.get("flavor") == "onnx":
        args = model.get_inputs()
        values = data.to_numpy() if isinstance(data, pd.DataFrame) else data
        if len(args) == 1:
            feeds = {args[0].name: np.asarray(values).astype(_onnx_dtype(args[0].type))}
        else:
            feeds = {
                a.name: np.asarray(data[a.name]).reshape(-1, 1).astype(_onnx_dtype(a.type))
                for a in args
            }
        outputs = model.run(None, feeds)
        result = {"predictions": np.asarray(outputs[0]).tolist()}
        if len(outputs) > 1 and np.asarray(outputs[1]).ndim == 2:
            result["probabilities"] = np.asarray(outputs[1]).tolist()
        return result
    if manifest.get("flavor") == "sklearn":
        names = getattr(model, "feature_names_in_", None)
        if isinstance(data, pd.DataFrame) and names is None and hasattr(model, "n_features_in_"):
            data = data.to_numpy()
        elif names is not None and isinstance(data, np.ndarray) and data.ndim == 2:
            data = pd.DataFrame(data, columns=names)
    result = {"predictions": _jsonable(model.predict(data))}
    proba = getattr(model, "predict_proba", None)
    if manifest.get("flavor") == "sklearn" and callable(proba):
        result["probabilities"] = np.asarray(proba(data), dtype="float64").tolist()
        classes = getattr(model, "classes_", None)
        if classes is not None:
            result["classes"] = _jsonable(classes)
    return result


def _onnx_dtype(kind: str) -> str:
    return {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64",
            "tensor(string)": "object", "tensor(bool)": "bool"}.get(kind, "float32")  # fmt: skip


def _jsonable(values: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(values, pd.DataFrame):
        return values.to_dict(orient="records")
    return np.asarray(values).tolist()


def read_table(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise BundleError(f"input {path} does not exist or is not a file")
    try:
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".json":
            return parse_request(json.loads(path.read_text("utf-8")))
        return pd.read_csv(path)
    except BundleError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise BundleError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None


def parse_request(body: Any) -> Any:
    import pandas as pd

    if not isinstance(body, dict) or len(body) != 1:
        raise BundleError(
            'the body must be one of {"dataframe_split": {...}}, {"dataframe_records": [...]} '
            'or {"instances": [...]}'
        )
    ((key, value),) = body.items()
    try:
        if key == "dataframe_split" and isinstance(value, dict):
            return pd.DataFrame(value.get("data"), columns=value.get("columns"))
        if key == "dataframe_records" and isinstance(value, list):
            return pd.DataFrame.from_records(value)
        if key in ("instances", "inputs") and isinstance(value, list):
            if value and isinstance(value[0], dict):
                return pd.DataFrame.from_records(value)
            return value
    except (TypeError, ValueError) as exc:
        raise BundleError(f"cannot read {key} as a table: {exc}") from None
    raise BundleError(f"unsupported request key {key!r} (or wrong type for it)")


class Handler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True
    model: Any = None
    manifest: dict[str, Any] = {}

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {"status": "ok", "model_uri": self.manifest.get("model_uri")})
        elif self.path == "/signature":
            self._send(200, {"signature": self.manifest.get("signature")})
        else:
            self._send(404, {"error_code": "NOT_FOUND", "message": f"no route {self.path}"})

    def do_POST(self) -> None:
        if self.path != "/invocations":
            self._send(404, {"error_code": "NOT_FOUND", "message": f"no route {self.path}"})
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self._send(411, {"error_code": "INVALID_INPUT", "message": "send Content-Length"})
            return
        if int(length) > MAX_BODY:
            self.close_connection = True
            self._send(413, {"error_code": "INVALID_INPUT", "message": "the body is too large"})
            return
        try:
            body = json.loads(self.rfile.read(int(length)) or b"null")
            self._send(200, predict(self.model, self.manifest, parse_request(body)))
        except BundleError as exc:
            self._send(400, {"error_code": "INVALID_INPUT", "message": str(exc)})
        except ValueError as exc:
            self._send(400, {"error_code": "INVALID_INPUT", "message": f"bad request: {exc}"})
        except Exception as exc:  # noqa: BLE001 - never a traceback to the client
            message = f"the model failed: {type(exc).__name__}"
            self._send(500, {"error_code": "INTERNAL_ERROR", "message": message})

    def _send(self, status: int, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve this offline Keel model bundle.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("verify", help="check every file against MANIFEST.json")
    run = commands.add_parser("predict", help="predict a .parquet, .csv or .json file")
    run.add_argument("input", type=Path)
    run.add_argument("-o", "--output", type=Path, help="write CSV here (default: stdout)")
    http = commands.add_parser("http", help="serve POST /invocations")
    http.add_argument("--host", default="127.0.0.1")
    http.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    try:
        manifest = load_manifest()
        verify(manifest)
        if args.command == "verify":
            print(f"ok: {len(manifest['files'])} files match MANIFEST.json")
            return 0
        model = load_model(manifest)
        if args.command == "predict":
            return _predict_file(model, manifest, args.input, args.output)
        Handler.model, Handler.manifest = model, manifest
        server = ThreadingHTTPServer((args.host, args.port), Handler)
        host, port = server.server_address[:2]
        print(f"serving {manifest.get('model_uri')} on http://{host}:{port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code


def _predict_file(model: Any, manifest: dict[str, Any], source: Path, output: Path | None) -> int:
    import pandas as pd

    data = read_table(source)
    try:
        result = predict(model, manifest, data)
    except BundleError:
        raise
    except Exception as exc:  # noqa: BLE001 - the model's own failure, as one line
        raise BundleError(f"the model failed: {type(exc).__name__}: {exc}", 1) from None
    frame = pd.DataFrame({"prediction": result["predictions"]})
    if "probabilities" in result:
        labels = result.get("classes") or range(len(result["probabilities"][0]))
        for i, label in enumerate(labels):
            frame[f"probability_{label}"] = [row[i] for row in result["probabilities"]]
    if output is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        frame.to_csv(output, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
