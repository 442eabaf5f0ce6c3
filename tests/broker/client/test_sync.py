"""The blocking wrappers run the asyncio clients on a private loop thread."""

from __future__ import annotations

import asyncio
import threading

import pytest
from streamhouse.broker.client import AdminClient, Consumer, Producer
from streamhouse.broker.client.sync import LoopThread


def test_loop_thread_runs_coroutines_and_functions_on_its_own_thread() -> None:
    runner = LoopThread("test-loop")
    try:

        async def where() -> str:
            await asyncio.sleep(0)
            return threading.current_thread().name

        assert runner.run(where()) == "test-loop"
        assert runner.call(lambda: threading.current_thread().name) == "test-loop"

        async def boom() -> None:
            raise KeyError("inside")

        with pytest.raises(KeyError, match="inside"):
            runner.run(boom())

        async def reentrant() -> None:
            runner.run(where())

        with pytest.raises(RuntimeError, match="its own event loop"):
            runner.run(reentrant())
    finally:
        runner.stop()
    with pytest.raises(RuntimeError, match="closed"):
        runner.run(asyncio.sleep(0))


def test_wrappers_validate_arguments_and_close_cleanly() -> None:
    with pytest.raises(ValueError, match="acks"):
        Producer("127.0.0.1:1", acks="maybe")
    with Consumer("127.0.0.1:1") as consumer:
        consumer.assign([("t", 0)])
        assert consumer.assignment() == {("t", 0)}
        assert consumer.position(("t", 0)) is None
    consumer.close()  # twice is fine
    before = threading.active_count()
    AdminClient("127.0.0.1:1").close()
    assert threading.active_count() <= before


def test_blocking_methods_keep_the_async_signature_and_docs() -> None:
    from streamhouse.broker.client import AsyncAdminClient

    assert AdminClient.create_topic.__doc__ == AsyncAdminClient.create_topic.__doc__
    assert AdminClient.create_topic.__name__ == "create_topic"
