"""The S3 server's ports: weed refuses to start when one of them is another's gRPC port."""
from __future__ import annotations

from enhance_ops.infra.seaweedfs import _free_port_pairs


def test_ports_and_their_grpc_partners_are_all_distinct() -> None:
    for _ in range(500):  # a clash is rare for one start, and the tests start many servers
        ports = _free_port_pairs(4)
        assert len(set(ports) | {p + 10000 for p in ports}) == 8
        assert all(p + 10000 <= 65535 for p in ports)
