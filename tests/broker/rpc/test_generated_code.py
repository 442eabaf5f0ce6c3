"""The checked-in gRPC code is what the .proto files generate (so the API cannot drift)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_generated_code_matches_proto_files():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_stubs_import_from_the_streamhouse_namespace():
    from streamhouse.broker.rpc.v1 import broker_pb2, broker_pb2_grpc

    assert broker_pb2_grpc.ProduceStub is not None
    request = broker_pb2.ProduceRequest(topic="t", acks=broker_pb2.ACKS_ALL)
    assert broker_pb2.ProduceRequest.FromString(request.SerializeToString()).acks == 2
