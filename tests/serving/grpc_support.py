"""Helpers for the gRPC tests: an event loop in a thread, a tritonclient, the raw stub."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import grpc

from keel.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

TIMEOUT_S = 20.0


class LoopThread:
    """An asyncio loop running in a daemon thread, as uvicorn's loop runs beside gRPC."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT_S)

    def close(self) -> None:
        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self.run(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT_S)
        self.loop.close()


@contextmanager
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    try:
        yield runner
    finally:
        runner.close()


@contextmanager
def stub_for(address: str) -> Iterator[Any]:
    """The generated stub on a fresh channel: sends typed contents the way we choose."""
    channel = grpc.insecure_channel(address)
    try:
        yield pb_grpc.GRPCInferenceServiceStub(channel)
    finally:
        channel.close()


@contextmanager
def triton_client(address: str) -> Iterator[Any]:
    """The standard Open Inference Protocol client, unchanged."""
    import tritonclient.grpc

    client = tritonclient.grpc.InferenceServerClient(url=address)
    try:
        yield client
    finally:
        client.close()


def triton_inputs(**arrays: tuple[str, Any]) -> list[Any]:
    import tritonclient.grpc

    inputs = []
    for name, (datatype, array) in arrays.items():
        infer_input = tritonclient.grpc.InferInput(name, list(array.shape), datatype)
        infer_input.set_data_from_numpy(array)
        inputs.append(infer_input)
    return inputs
