"""Turning the friendly option values people pass (Kafka's spellings too) into wire values.

Bad values fail when the client is constructed, not on the first send minutes later.
"""

from __future__ import annotations

from streamhouse.broker.records import Compression
from streamhouse.broker.rpc.v1 import broker_pb2 as pb

_ACKS = {
    "leader": pb.ACKS_LEADER,
    "1": pb.ACKS_LEADER,
    "all": pb.ACKS_ALL,
    "-1": pb.ACKS_ALL,
    "none": pb.ACKS_NONE,
    "0": pb.ACKS_NONE,
}
_COMPRESSION = {
    "none": Compression.NONE,
    "gzip": Compression.GZIP,
    "snappy": Compression.SNAPPY,
    "lz4": Compression.LZ4,
    "zstd": Compression.ZSTD,
}
AUTO_OFFSET_RESETS = ("latest", "earliest", "error")
ASSIGNORS = ("range", "roundrobin", "sticky")


def parse_acks(acks: str | int) -> int:
    """ "leader"/1, "all"/-1 or "none"/0 as the proto's ``Acks`` value."""
    if isinstance(acks, bool) or not isinstance(acks, str | int):
        raise ValueError(f"acks must be 'leader', 'all', 'none', 1, -1 or 0, not {acks!r}")
    value = _ACKS.get(str(acks).lower())
    if value is None:
        raise ValueError(f"acks must be 'leader', 'all', 'none', 1, -1 or 0, not {acks!r}")
    return value


def parse_compression(compression: str | Compression | None) -> Compression:
    if compression is None:
        return Compression.NONE
    if isinstance(compression, Compression):
        return compression
    codec = _COMPRESSION.get(str(compression).lower())
    if codec is None:
        raise ValueError(
            f"compression must be one of {', '.join(_COMPRESSION)}, not {compression!r}"
        )
    return codec


def parse_servers(servers: str) -> list[str]:
    """``"host:port[,host:port...]"`` as a list of addresses to bootstrap from."""
    if not isinstance(servers, str):
        raise ValueError(f"servers must be a 'host:port' string, not {servers!r}")
    addresses = [part.strip() for part in servers.split(",") if part.strip()]
    if not addresses:
        raise ValueError("servers must name at least one 'host:port'")
    for address in addresses:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"server address {address!r} is not 'host:port'")
    return addresses


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def check_positive(name: str, value: int, *, zero_ok: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, not {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        raise ValueError(f"{name} must be {'>= 0' if zero_ok else '> 0'}, not {value}")
    return value
