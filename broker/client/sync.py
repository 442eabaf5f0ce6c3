"""Blocking clients: the asyncio clients run on a private event loop in a daemon thread.

Each blocking method submits the async method's coroutine to that loop and waits for it, so
there is one implementation of every behaviour. ``Producer.send`` only waits for buffer space
and returns a ``concurrent.futures.Future`` that resolves when the record is acknowledged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from streamhouse.broker.client.admin import AsyncAdminClient
from streamhouse.broker.client.consumer import AsyncConsumer
from streamhouse.broker.client.models import RecordMetadata
from streamhouse.broker.client.producer import AsyncProducer

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in its own daemon thread."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), name=name, daemon=True)
        self._thread.start()
        started.wait()

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(started.set)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs ``coroutine`` on the loop and blocks until it finishes."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a blocking client method was called from its own event loop")
        if self.loop.is_closed():
            coroutine.close()
            raise RuntimeError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt: do not leave the call running
            raise

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Runs a plain function on the loop thread (the async clients are not thread-safe)."""

        async def invoke() -> T:
            return function(*args, **kwargs)

        return self.run(invoke())

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def _blocking(async_method: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    name = async_method.__name__

    @functools.wraps(async_method)
    def method(self: _SyncClient, *args: Any, **kwargs: Any) -> T:
        return self._runner.run(getattr(self._client, name)(*args, **kwargs))

    return method


def _on_loop(plain_method: Callable[..., T]) -> Callable[..., T]:
    name = plain_method.__name__

    @functools.wraps(plain_method)
    def method(self: _SyncClient, *args: Any, **kwargs: Any) -> T:
        return self._runner.call(getattr(self._client, name), *args, **kwargs)

    return method


class _SyncClient:
    _async_class: type
    _client: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._runner = LoopThread(f"streamhouse-{type(self).__name__.lower()}")
        try:
            self._client = self._runner.call(self._async_class, *args, **kwargs)
        except BaseException:
            self._runner.stop()
            raise

    def close(self, *args: Any, **kwargs: Any) -> None:
        try:
            self._runner.run(self._client.close(*args, **kwargs))
        except RuntimeError:
            if not self._runner.loop.is_closed():
                raise
        finally:
            self._runner.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Producer(_SyncClient):
    """Blocking producer; takes the same arguments as :class:`AsyncProducer`."""

    _async_class = AsyncProducer

    def send(
        self, topic: str, value: bytes | None, key: bytes | None = None, **options: Any
    ) -> concurrent.futures.Future[RecordMetadata]:
        """Buffers one record (blocking while the buffer is full); the future resolves with
        its metadata once acknowledged."""
        result: concurrent.futures.Future[RecordMetadata] = concurrent.futures.Future()

        def copy(done: asyncio.Future[RecordMetadata]) -> None:
            if done.cancelled():
                result.cancel()
            elif done.exception() is not None:
                result.set_exception(done.exception())
            else:
                result.set_result(done.result())

        acked = self._runner.run(self._client.send(topic, value, key, **options))
        acked.add_done_callback(copy)
        return result

    send_and_wait = _blocking(AsyncProducer.send_and_wait)
    send_many = _blocking(AsyncProducer.send_many)
    flush = _blocking(AsyncProducer.flush)
    start = _blocking(AsyncProducer.start)


class Consumer(_SyncClient):
    """Blocking consumer; takes the same arguments as :class:`AsyncConsumer`."""

    _async_class = AsyncConsumer

    subscribe = _on_loop(AsyncConsumer.subscribe)
    assign = _on_loop(AsyncConsumer.assign)
    assignment = _on_loop(AsyncConsumer.assignment)
    seek = _on_loop(AsyncConsumer.seek)
    position = _on_loop(AsyncConsumer.position)
    poll = _blocking(AsyncConsumer.poll)
    poll_arrow = _blocking(AsyncConsumer.poll_arrow)
    commit = _blocking(AsyncConsumer.commit)
    committed = _blocking(AsyncConsumer.committed)
    seek_to_beginning = _blocking(AsyncConsumer.seek_to_beginning)
    seek_to_end = _blocking(AsyncConsumer.seek_to_end)
    offsets_for_times = _blocking(AsyncConsumer.offsets_for_times)


class AdminClient(_SyncClient):
    """Blocking admin client; takes the same arguments as :class:`AsyncAdminClient`."""

    _async_class = AsyncAdminClient

    create_topic = _blocking(AsyncAdminClient.create_topic)
    list_topics = _blocking(AsyncAdminClient.list_topics)
    describe_topic = _blocking(AsyncAdminClient.describe_topic)
    update_topic_config = _blocking(AsyncAdminClient.update_topic_config)
    delete_topic = _blocking(AsyncAdminClient.delete_topic)
    add_partitions = _blocking(AsyncAdminClient.add_partitions)
    metadata = _blocking(AsyncAdminClient.metadata)
    list_groups = _blocking(AsyncAdminClient.list_groups)
    describe_group = _blocking(AsyncAdminClient.describe_group)
    fetch_offsets = _blocking(AsyncAdminClient.fetch_offsets)
    reset_offsets = _blocking(AsyncAdminClient.reset_offsets)
    delete_group = _blocking(AsyncAdminClient.delete_group)
