"""Keel's ``grpc_predict_v2.proto`` is wire-identical to the standard, and its code is fresh.

Triton's ``grpc_service.proto`` (shipped compiled in ``tritonclient.grpc``) is a superset of
KServe's: every message, field number, type and RPC Keel defines must be there unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.serving.proto import grpc_predict_v2_pb2 as pb

triton_pb = pytest.importorskip("tritonclient.grpc.service_pb2")


def _messages(descriptor: object, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for name, message in descriptor.message_types_by_name.items():  # type: ignore[attr-defined]
        out[prefix + name] = message
        stack = [(prefix + name, message)]
        while stack:
            path, msg = stack.pop()
            for nested in msg.nested_types:
                if not nested.GetOptions().map_entry:
                    out[f"{path}.{nested.name}"] = nested
                    stack.append((f"{path}.{nested.name}", nested))
    return out


def _shape(field: object) -> tuple[object, ...]:
    f = field  # a FieldDescriptor
    message_type = f.message_type  # type: ignore[attr-defined]
    target = None
    if message_type is not None:
        if message_type.GetOptions().map_entry:
            value = message_type.fields_by_name["value"]
            target = ("map", value.type, value.message_type and value.message_type.full_name)
        else:
            target = message_type.full_name
    return (f.number, f.type, f.is_repeated, target)  # type: ignore[attr-defined]


def test_every_message_and_field_matches_tritons_schema() -> None:
    ours, theirs = _messages(pb.DESCRIPTOR), _messages(triton_pb.DESCRIPTOR)
    assert len(ours) == 18
    for name, message in ours.items():
        assert name in theirs, name
        other = theirs[name]
        for field in message.fields:  # type: ignore[attr-defined]
            assert field.name in other.fields_by_name, f"{name}.{field.name}"  # type: ignore[attr-defined]
            assert _shape(field) == _shape(other.fields_by_name[field.name]), f"{name}.{field.name}"  # type: ignore[attr-defined]
    assert pb.DESCRIPTOR.package == "inference"


def test_every_rpc_matches_tritons_service() -> None:
    ours = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    theirs = triton_pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    names = [m.name for m in ours.methods]
    assert names == [
        "ServerLive",
        "ServerReady",
        "ModelReady",
        "ServerMetadata",
        "ModelMetadata",
        "ModelInfer",
    ]
    for method in ours.methods:
        other = theirs.methods_by_name[method.name]
        assert method.input_type.full_name == other.input_type.full_name
        assert method.output_type.full_name == other.output_type.full_name
        assert not method.client_streaming
        assert not method.server_streaming


def test_generated_modules_are_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    from keel.serving.proto import _generate

    for path in _generate.generate(tmp_path):
        committed = _generate.HERE / path.name
        assert committed.read_text() == path.read_text(), f"run `make proto`: {path.name} is stale"


def test_messages_live_in_a_private_pool() -> None:
    from google.protobuf import descriptor_pool

    assert pb.DESCRIPTOR.pool is not descriptor_pool.Default()
    # and so the standard client's own copy of the schema loads beside it
    assert triton_pb.ModelInferRequest.DESCRIPTOR.full_name == "inference.ModelInferRequest"
