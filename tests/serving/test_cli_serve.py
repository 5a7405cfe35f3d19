"""``keel serve`` as a real process: loads, warms, serves, stops; bad input exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton
from oip_support import Churn, keel_home, register_churn, triton_client
from tests.live_server import free_port, start_until_ready

KEEL = str(Path(sys.executable).with_name("keel"))
START_S = 60.0


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Churn:
    with keel_home(tmp_path_factory.mktemp("cli-serve-home")) as home:
        return register_churn(home)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    return {**env, "KEEL_HOME": str(home)}


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEEL, *args], check=False, env=_env(home), capture_output=True, text=True, timeout=START_S
    )


def test_keel_serve_answers_the_standard_client(churn: Churn) -> None:
    def command(ports: list[int]) -> list[str]:
        port, grpc_port = ports
        return [
            KEEL,
            "serve",
            churn.uri,
            "--port",
            str(port),
            "--grpc-port",
            str(grpc_port),
            "--max-batch-size",
            "32",
        ]

    process, (port, grpc_port) = start_until_ready(
        command,
        ports=2,
        timeout=START_S,
        env=_env(churn.home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with triton_client(f"http://127.0.0.1:{port}") as client:
            rows = churn.X.to_numpy()[:3]
            tensor = triton.InferInput("x", list(rows.shape), "FP64")
            tensor.set_data_from_numpy(rows)
            result = client.infer("churn", [tensor], request_id="cli")
            expected = churn.model.predict(churn.X.iloc[:3])
            np.testing.assert_array_equal(result.as_numpy("predict"), expected)
            assert result.get_response()["model_version"] == "1"
        grpc_client = triton_grpc.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        try:  # the same service and batcher over gRPC
            assert grpc_client.is_model_ready("churn")
            tensor = triton_grpc.InferInput("x", list(rows.shape), "FP64")
            tensor.set_data_from_numpy(rows)
            result = grpc_client.infer("churn", [tensor])
            np.testing.assert_array_equal(result.as_numpy("predict"), expected)
        finally:
            grpc_client.close()
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=START_S)
    assert "serving churn/1 on http://127.0.0.1:" in out
    assert f"gRPC on 127.0.0.1:{grpc_port}" in out
    assert "batching: max 32 rows, 1 ms" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "not-a-uri"], "error: invalid model URI 'not-a-uri'"),
        (["serve", "models:/nobody@champion"], "error: "),
        (["serve", "models:/churn/9"], "error: "),
        (["serve", "models:/churn/1", "--host", "0.0.0.0"], "error: binding 0.0.0.0 would expose"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(churn: Churn, args: list[str], message: str) -> None:
    result = _run(args, churn.home)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(message)


class _Broken:
    def predict(self, data: object) -> object:
        raise RuntimeError("weights are corrupt")


def test_a_version_that_fails_to_warm_exits_before_serving(churn: Churn) -> None:
    import keel
    from keel.registry.signature import ColumnSpec, Schema, Signature

    signature = Signature(Schema((ColumnSpec("a", "float64"),), "dataframe"))
    with keel_home(churn.home):
        with keel.start_run(experiment="serving") as run:
            run.log_model(_Broken(), "model", signature=signature, input_example={"a": [1.0]})
        keel.register_model(f"runs:/{run.run_id}/model", "broken")
    port = free_port()
    result = _run(["serve", "models:/broken/1", "--port", str(port)], churn.home)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: broken/1 failed to warm up on its input example, not served: "
        "RuntimeError: weights are corrupt"
    ]
    assert "serving" not in result.stdout
