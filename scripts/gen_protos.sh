#!/usr/bin/env bash
# Regenerate src/boxless/wire/*_pb2.py(i) from the .proto files.
# Needs the dev extras (grpcio-tools, mypy-protobuf). The generated modules are
# committed so a user install needs no compiler; tests/unit/test_wire_generated.py
# checks they match the .proto files.
set -euo pipefail
cd "$(dirname "$0")/../src"
python -m grpc_tools.protoc -I . --python_out=. --mypy_out=quiet:. boxless/wire/*.proto
