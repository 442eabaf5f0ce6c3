"""open_object_store: the URL forms operators write in --object-store."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamhouse.broker.storage import LocalObjectStore, S3ObjectStore, open_object_store


async def test_file_url_and_plain_path_give_a_local_store(tmp_path: Path) -> None:
    by_url = open_object_store(f"file://{tmp_path}/objects")
    by_path = open_object_store(str(tmp_path / "objects"))
    assert isinstance(by_url, LocalObjectStore) and isinstance(by_path, LocalObjectStore)
    await by_url.put("k", b"v")
    assert await by_path.get("k") == b"v"
    assert open_object_store(f"file://localhost{tmp_path}").root == tmp_path


def test_s3_url_sets_bucket_prefix_endpoint_and_region() -> None:
    store = open_object_store(
        "s3://my-bucket/cluster-a/objects?endpoint=http://127.0.0.1:9000&region=eu-west-1"
        "&max_retries=2",
        breaker_reset_s=3.0,
    )
    assert isinstance(store, S3ObjectStore)
    assert store.bucket == "my-bucket"
    assert store.prefix == "cluster-a/objects/"
    assert store.endpoint_url == "http://127.0.0.1:9000"
    assert store.region == "eu-west-1"
    assert store.max_retries == 2
    assert store.breaker.reset_timeout_s == 3.0
    bare = open_object_store("s3://b2")
    assert isinstance(bare, S3ObjectStore) and bare.prefix == "" and bare.endpoint_url is None


async def test_s3_url_reaches_the_server(s3_endpoint: str, s3_bucket: str) -> None:
    store = open_object_store(f"s3://{s3_bucket}/pre?endpoint={s3_endpoint}")
    try:
        await store.put("x/y", b"hello")
        assert [info.key for info in await store.list()] == ["x/y"]
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memory://x", "unsupported object store URL"),
        ("gs://bucket/p", "unsupported object store URL"),
        ("", "empty object store URL"),
        ("s3:///prefix-only", "has no bucket"),
        ("s3://b/p?colour=red", "unknown S3 URL parameter 'colour'"),
        ("s3://b/p?max_retries=many", "max_retries='many' is not a valid int"),
        ("file://otherhost/data", "names host 'otherhost'"),
        ("s3://b/p?part_size=1000", "part_size must be >= 5242880"),
        ("s3://b/../up", "invalid S3 key prefix"),
    ],
)
def test_bad_urls_name_the_problem_and_the_accepted_forms(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        open_object_store(url)
    if "unsupported" in message or "host" in message or "empty" in message:
        assert "s3://bucket" in str(info.value) and "file:///" in str(info.value)
