"""Regenerate the Python modules of ``grpc_predict_v2.proto`` (run by ``make proto``).

``python -m keel.serving.proto._generate`` runs ``grpc_tools.protoc`` (the dev extra's
grpcio-tools) and rewrites the message module to build its descriptors in a private
:class:`~google.protobuf.descriptor_pool.DescriptorPool`: the standard's ``inference.*``
names would otherwise collide with ``tritonclient.grpc``'s copy of the same schema in
protobuf's default pool ("duplicate symbol 'inference.ServerLiveRequest'").
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

__all__ = ["PROTO", "generate"]

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[2]  # the directory holding the ``keel`` package
PROTO = HERE / "grpc_predict_v2.proto"
MODULES = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2_grpc.py")
_DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
_PRIVATE_POOL = (
    "# Keel: a private pool, so another copy of the `inference` schema (tritonclient's)\n"
    "# can live in the same process.\n"
    "_POOL = _descriptor_pool.DescriptorPool()\n"
    "DESCRIPTOR = _POOL.AddSerializedFile("
)


def generate(out_dir: Path) -> list[Path]:
    """Write the generated modules into ``out_dir`` and return their paths."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        rel = PROTO.relative_to(SRC).as_posix()
        status = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{SRC}",
                f"--python_out={tmp}",
                f"--grpc_python_out={tmp}",
                rel,
            ]
        )
        if status != 0:
            raise RuntimeError(f"protoc failed with status {status} on {rel}")
        generated = Path(tmp) / PROTO.parent.relative_to(SRC)
        written = []
        for name in MODULES:
            text = (generated / name).read_text()
            if name.endswith("_pb2.py"):
                if _DEFAULT_POOL not in text:
                    raise RuntimeError(f"{name}: protoc output changed; no default-pool line")
                text = text.replace(_DEFAULT_POOL, _PRIVATE_POOL)
            target = out_dir / name
            target.write_text(text)
            written.append(target)
    return written


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
