"""Publishes a bundle's user and item features to Redis and switches readers to it atomically."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import Any, TypeVar, cast

import redis

from services.common.redis_layout import Keys, Meta, encode_extras, encode_histories, encode_items, encode_users
from services.feature.catalogue import Catalogue
from wren.core.bundle import Bundle

T = TypeVar("T")


def publish_bundle(
    bundle: Bundle, url: str, prefix: str = "wren", keep: int = 2, progress: bool = True, batch: int = 1000
) -> str:
    """Writes every user, history, item and item-extras record, the catalogue and the meta of `bundle` under
    its version (pipelined, not transactional: nobody reads a version before the switch), then points
    `{prefix}:live` at it with one SET, then deletes all but the `keep` most recently published versions
    (never the live one).
    Publishing the live version again rewrites identical records and changes nothing. Returns the version.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    keys = Keys(prefix)
    meta = Meta.from_bundle(bundle)
    version = meta.version
    records = chain(
        ((keys.user(version, user_id), record) for user_id, record in encode_users(bundle.users, meta)),
        ((keys.history(version, user_id), record) for user_id, record in encode_histories(bundle.users)),
        (
            (keys.item(version, item_id), record)
            for item_id, record in encode_items(bundle.items, bundle.embeddings, meta)
        ),
        ((keys.extras(version, item_id), record) for item_id, record in encode_extras(bundle.items)),
        [(keys.catalogue(version), Catalogue.from_items(version, bundle.items, bundle.genres).to_bytes())],
    )
    client = redis.Redis.from_url(url)
    try:
        total = 2 * (meta.user_count + meta.item_count) + 1
        with _progress(total, f"publishing {version}", progress) as bar:
            for chunk in _chunks(records, batch):
                with client.pipeline(transaction=False) as pipe:
                    for key, record in chunk:
                        pipe.set(key, record)
                    pipe.execute()
                bar.update(len(chunk))
        client.set(keys.meta(version), meta.to_json())
        client.zadd(keys.versions, {version: time.time()})
        client.set(keys.live, version)
        prune_versions(client, keys, keep)
    finally:
        client.close()
    return version


def prune_versions(client: redis.Redis, keys: Keys, keep: int) -> list[str]:
    """Deletes every key of published versions older than the newest `keep` (SCAN + UNLINK); the live
    version always stays. Returns the versions deleted."""
    live = client.get(keys.live)
    published = [raw.decode() for raw in cast(list[bytes], client.zrange(keys.versions, 0, -1))]  # bytes replies
    doomed = [version for version in published[: max(len(published) - keep, 0)] if version.encode() != live]
    for version in doomed:
        for chunk in _chunks(client.scan_iter(match=keys.version_pattern(version), count=1000), 1000):
            client.unlink(*chunk)
        client.zrem(keys.versions, version)
    return doomed


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, max(size, 1))):
        yield chunk


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _progress(total: int, description: str, enabled: bool) -> Any:
    """A tqdm bar on stderr, or a silent stand-in (tqdm is imported only when progress is shown)."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="record")
