"""Builds the gRPC server of one agent: the four services over one BrokerService."""

from __future__ import annotations

import grpc
from streamhouse.broker.rpc.admin import AdminServicer
from streamhouse.broker.rpc.calls import MalformedRequestInterceptor
from streamhouse.broker.rpc.fetch import FetchServicer
from streamhouse.broker.rpc.groups import GroupsServicer
from streamhouse.broker.rpc.produce import ProduceServicer
from streamhouse.broker.rpc.v1 import broker_pb2_grpc
from streamhouse.broker.service import BrokerService, GroupService

MAX_MESSAGE_BYTES = 128 * 1024 * 1024


def build_grpc_server(broker: BrokerService, groups: GroupService, address: str) -> grpc.aio.Server:
    """An unstarted server listening on ``address`` (``host:port``; port 0 picks one).

    Raises:
        RuntimeError: the address cannot be bound.
    """
    server = grpc.aio.server(
        interceptors=[MalformedRequestInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ],
    )
    broker_pb2_grpc.add_AdminServicer_to_server(AdminServicer(broker), server)
    broker_pb2_grpc.add_ProduceServicer_to_server(ProduceServicer(broker), server)
    broker_pb2_grpc.add_FetchServicer_to_server(FetchServicer(broker), server)
    broker_pb2_grpc.add_GroupsServicer_to_server(GroupsServicer(groups), server)
    if server.add_insecure_port(address) == 0:
        raise RuntimeError(f"cannot listen for gRPC on {address}")
    return server
