"""The object store: identical semantics on the local directory and on S3 (moto over HTTP)."""

from __future__ import annotations

import threading

import pytest

from cvn_assets.storage.object_store import IntegrityError, LocalObjectStore, ObjectNotFound, StorageError, sha256_hex
from cvn_assets.storage.factory import build_object_store
from cvn_assets.storage.settings import StorageSettings
from cvn_assets_tests.fixtures.stores import corrupt_object

KEY = "s43-predictions/test-campaign/SOLUSDC/logreg/fold-00.npz"


def test_put_get_round_trip_records_sha256(object_store):
    info = object_store.put(KEY, b"payload")
    assert info.sha256 == sha256_hex(b"payload") and info.size == 7
    assert object_store.get(KEY) == b"payload"
    head = object_store.head(KEY)
    assert head.sha256 == sha256_hex(b"payload") and head.size == 7
    assert object_store.exists(KEY)


def test_absent_key_is_one_exception_type_on_both_backends(object_store):
    assert not object_store.exists(KEY)
    with pytest.raises(ObjectNotFound, match="fold-00.npz"):
        object_store.get(KEY)
    with pytest.raises(ObjectNotFound):
        object_store.head(KEY)
    object_store.delete(KEY)  # deleting an absent key is not an error, as in S3


def test_bytes_changed_behind_the_store_fail_the_checksum(object_store):
    object_store.put(KEY, b"payload-1234")
    corrupt_object(object_store, KEY, lambda data: data[:-1] + bytes([data[-1] ^ 0x01]))
    with pytest.raises(IntegrityError, match="checksum mismatch") as raised:
        object_store.get(KEY)
    assert raised.value.expected == sha256_hex(b"payload-1234")


def test_list_is_scoped_to_the_prefix(object_store):
    object_store.put("s43-predictions/campaign-a/SOLUSDC/hgb/fold-00.npz", b"a")
    object_store.put("s43-predictions/campaign-ab/SOLUSDC/hgb/fold-00.npz", b"ab")
    object_store.put("s43-predictions/campaign-b/SOLUSDC/hgb/fold-00.npz", b"b")
    keys = [info.key for info in object_store.list("s43-predictions/campaign-a/")]
    assert keys == ["s43-predictions/campaign-a/SOLUSDC/hgb/fold-00.npz"]
    object_store.delete(keys[0])
    assert list(object_store.list("s43-predictions/campaign-a/")) == []


@pytest.mark.parametrize("key", ["../escape.npz", "/abs/path.npz", "a//b.npz", "a/./b.npz", "a/.hidden", ""])
def test_keys_that_could_escape_the_root_are_rejected_before_any_write(object_store, key, storage_root):
    with pytest.raises(ValueError, match="object key"):
        object_store.put(key, b"x")
    if isinstance(object_store, LocalObjectStore):
        assert not storage_root.exists() or not any(storage_root.rglob("*"))


def test_concurrent_reader_sees_old_or_new_never_torn(object_store):
    """A key rewritten in a loop is read concurrently: every read is one complete version."""
    versions = [bytes([n]) * 200_000 for n in range(1, 5)]
    object_store.put(KEY, versions[0])
    stop = threading.Event()
    seen, errors = set(), []

    def read() -> None:
        while not stop.is_set():
            try:
                seen.add(object_store.get(KEY))
            except Exception as exc:  # noqa: BLE001 — any failure is the finding
                errors.append(repr(exc))
                return

    reader = threading.Thread(target=read)
    reader.start()
    for round_ in range(15):
        for version in versions:
            object_store.put(KEY, version)
    stop.set()
    reader.join()
    assert errors == []
    assert seen <= set(versions) and len(seen) >= 1


def test_s3_endpoint_down_is_a_storage_error_naming_bucket(monkeypatch):
    from cvn_assets_tests.fixtures.s3 import CREDENTIALS, free_port

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CVN_S3_BUCKET", "cvn-down")
    monkeypatch.setenv("CVN_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("CVN_S3_MAX_ATTEMPTS", "1")
    store = build_object_store(StorageSettings.from_env())
    with pytest.raises(StorageError, match="cvn-down"):
        store.put(KEY, b"x")


def test_rewriting_a_rotted_object_with_its_original_bytes_heals_it(object_store):
    object_store.put(KEY, b"payload-1234")
    corrupt_object(object_store, KEY, lambda data: data.upper())
    object_store.put(KEY, b"payload-1234")
    assert object_store.get(KEY) == b"payload-1234"


def test_local_garbage_collection_keeps_referenced_content(storage_root):
    store = LocalObjectStore(storage_root)
    store.put(KEY, b"old")
    store.put(KEY, b"new")
    assert store.collect_garbage() == 0  # too young: a concurrent put may be about to link it
    assert store.collect_garbage(min_age_seconds=0) == 1
    assert store.get(KEY) == b"new"
