"""Build an object store from the URL an operator writes in a flag or config file."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from streamhouse.broker.storage.base import ObjectStore
from streamhouse.broker.storage.local import LocalObjectStore
from streamhouse.broker.storage.s3 import S3ObjectStore

ACCEPTED_FORMS = (
    "file:///absolute/path, a plain filesystem path, or "
    "s3://bucket[/prefix][?endpoint=http://host:port&region=us-east-1]"
)

# Query parameters of s3:// URLs and the constructor argument each one sets.
_S3_QUERY: dict[str, tuple[str, type]] = {
    "endpoint": ("endpoint_url", str),
    "endpoint_url": ("endpoint_url", str),
    "region": ("region", str),
    "multipart_threshold": ("multipart_threshold", int),
    "part_size": ("part_size", int),
    "max_retries": ("max_retries", int),
    "rate_limit_per_s": ("rate_limit_per_s", float),
    "rate_burst": ("rate_burst", int),
    "breaker_failure_threshold": ("breaker_failure_threshold", int),
    "breaker_reset_s": ("breaker_reset_s", float),
}


def open_object_store(url: str, **options: Any) -> ObjectStore:
    """Returns the store a URL names.

    Args:
        url: ``file:///abs/path`` or a plain path for :class:`LocalObjectStore`;
            ``s3://bucket/prefix?endpoint=...&region=...`` for :class:`S3ObjectStore` (the other
            numeric settings of the S3 store may be given as query parameters too).
        **options: keyword arguments for the store's constructor; they win over the URL's.

    Raises:
        ValueError: for any other scheme, a malformed URL or an unknown query parameter, with
            the accepted forms in the message.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"empty object store URL; expected {ACCEPTED_FORMS}")
    if "://" not in url:
        if options:
            raise ValueError(f"a local object store takes no options, got {sorted(options)}")
        return LocalObjectStore(Path(url))
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(
                f"file URL {url!r} names host {parts.netloc!r}; expected {ACCEPTED_FORMS}"
            )
        if parts.query or not parts.path.startswith("/"):
            raise ValueError(f"malformed file URL {url!r}; expected {ACCEPTED_FORMS}")
        if options:
            raise ValueError(f"a local object store takes no options, got {sorted(options)}")
        return LocalObjectStore(Path(unquote(parts.path)))
    if scheme == "s3":
        bucket = parts.netloc
        if not bucket:
            raise ValueError(f"S3 URL {url!r} has no bucket; expected {ACCEPTED_FORMS}")
        kwargs: dict[str, Any] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name not in _S3_QUERY:
                raise ValueError(f"unknown S3 URL parameter {name!r}; known: {sorted(_S3_QUERY)}")
            target, kind = _S3_QUERY[name]
            try:
                kwargs[target] = kind(value)
            except ValueError as exc:
                raise ValueError(
                    f"S3 URL parameter {name}={value!r} is not a valid {kind.__name__}"
                ) from exc
        kwargs.update(options)
        return S3ObjectStore(bucket, unquote(parts.path.lstrip("/")), **kwargs)
    raise ValueError(f"unsupported object store URL {url!r}; expected {ACCEPTED_FORMS}")
