#!/usr/bin/env bash
# Regenerates the gRPC stubs in skye_client/_proto from the proto Skye serves
# (needs grpcio-tools: pip install grpcio-tools). The stubs are committed, so installing the
# package needs no protoc.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
proto="$here/../../crates/skye-proto/proto"
out="$here/skye_client/_proto"
python3 -m grpc_tools.protoc -I "$proto" --python_out="$out" --grpc_python_out="$out" \
    --pyi_out="$out" "$proto/skye.proto"
# The proto has no package: make the stubs' import of each other relative to this package.
sed -i 's/^import skye_pb2 as skye__pb2$/from . import skye_pb2 as skye__pb2/' "$out/skye_pb2_grpc.py"
