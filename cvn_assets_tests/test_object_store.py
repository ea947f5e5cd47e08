"""The object store: identical semantics on the local directory and on S3 (moto over HTTP)."""

from __future__ import annotations

import threading
import time

import pytest

from cvn_assets.storage.object_store import (
    IntegrityError, LocalObjectStore, ObjectNotFound, ObjectTooLarge, S3ObjectStore, StorageError, sha256_hex,
)
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


# ---- S3 faults through the fault proxy (moto over HTTP behind it) ------------------------------

@pytest.fixture
def proxied_store(s3_fault_proxy) -> S3ObjectStore:
    store = build_object_store(StorageSettings.from_env())
    assert isinstance(store, S3ObjectStore) and store.endpoint_url == s3_fault_proxy.endpoint_url
    return store


def test_put_whose_acknowledgement_is_lost_succeeds_once_the_object_is_verified(proxied_store, s3_fault_proxy):
    s3_fault_proxy.arm("lost-ack", "PUT", r"fold-00\.npz", times=None)  # every attempt: S3 stores, answer lost
    info = proxied_store.put(KEY, b"payload-lost-ack")
    assert [kind for kind, _, _ in s3_fault_proxy.injected] == ["lost-ack"] * proxied_store.max_attempts
    assert info.sha256 == sha256_hex(b"payload-lost-ack")
    s3_fault_proxy.disarm()
    assert proxied_store.get(KEY) == b"payload-lost-ack"


def test_put_that_never_reached_s3_still_fails_naming_scenario_c(proxied_store, s3_fault_proxy):
    s3_fault_proxy.refuse_uploads_matching = r"fold-00\.npz"
    with pytest.raises(StorageError, match=r"after 2 attempt\(s\).*runbook scenario C: `cvn s3 check`"):
        proxied_store.put(KEY, b"payload")
    s3_fault_proxy.refuse_uploads_matching = None
    assert not proxied_store.exists(KEY)


@pytest.mark.parametrize("kind", ["reset-body", "truncate-body", "flip-body"])
def test_one_fault_while_reading_a_body_is_retried(proxied_store, s3_fault_proxy, kind):
    payload = bytes(range(256)) * 400
    proxied_store.put(KEY, payload)
    s3_fault_proxy.arm(kind, "GET", r"fold-00\.npz", times=1)
    assert proxied_store.get(KEY) == payload
    assert [k for k, _, _ in s3_fault_proxy.injected] == [kind]


def test_bytes_flipped_on_every_read_are_a_checksum_mismatch_after_the_budget(proxied_store, s3_fault_proxy):
    proxied_store.put(KEY, b"payload-1234" * 100)
    s3_fault_proxy.arm("flip-body", "GET", r"fold-00\.npz", times=None)
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        proxied_store.get(KEY)
    assert len(s3_fault_proxy.injected) == proxied_store.max_attempts


def test_stalled_endpoint_fails_within_the_deadline_naming_it(s3_fault_proxy, monkeypatch):
    monkeypatch.setenv("CVN_S3_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("CVN_S3_DEADLINE", "2")
    monkeypatch.setenv("CVN_S3_MAX_ATTEMPTS", "10")
    store = build_object_store(StorageSettings.from_env())
    s3_fault_proxy.arm("stall", "GET", r"fold-00\.npz", times=None)
    started = time.monotonic()
    with pytest.raises(StorageError) as raised:
        store.get(KEY)
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 0.5 + 0.5, f"gave up after {elapsed:.1f} s, deadline 2 s + one read timeout"
    message = str(raised.value)
    assert s3_fault_proxy.endpoint_url in message and "CVN_S3_DEADLINE=2 s" in message
    assert "runbook scenario C" in message


def test_object_longer_than_accepted_is_refused_from_its_length(object_store):
    object_store.put(KEY, b"x" * 1000)
    with pytest.raises(ObjectTooLarge, match="expected at most 100 bytes, found 1000"):
        object_store.get(KEY, max_bytes=100)
    assert object_store.get(KEY, max_bytes=1000) == b"x" * 1000


def test_endpoint_secrets_never_reach_messages(monkeypatch):
    from cvn_assets_tests.fixtures.s3 import CREDENTIALS, free_port

    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CVN_S3_BUCKET", "cvn-down")
    monkeypatch.setenv("CVN_S3_ENDPOINT_URL", f"http://user:SECRET@127.0.0.1:{free_port()}/?token=SECRET")
    monkeypatch.setenv("CVN_S3_MAX_ATTEMPTS", "1")
    store = build_object_store(StorageSettings.from_env())
    assert "SECRET" not in store.describe()
    with pytest.raises(StorageError) as raised:
        store.put(KEY, b"x")
    assert "SECRET" not in str(raised.value) and "127.0.0.1" in str(raised.value)


@pytest.mark.parametrize("name", ["CVN_S3_CONNECT_TIMEOUT", "CVN_S3_READ_TIMEOUT", "CVN_S3_DEADLINE",
                                  "CVN_S3_MAX_ATTEMPTS"])
@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan"])
def test_timeouts_and_attempts_must_be_positive_numbers_naming_the_variable(name, value):
    environ = {"CVN_S3_BUCKET": "cvn-bucket", name: value}
    with pytest.raises(ValueError, match=rf"{name} expected a positive (integer|number of seconds), found '{value}'"):
        StorageSettings.from_env(environ)


def test_timeouts_have_defaults_in_seconds():
    settings = StorageSettings.from_env({"CVN_S3_BUCKET": "cvn-bucket", "CVN_S3_DEADLINE": "30"})
    assert (settings.connect_timeout, settings.read_timeout, settings.deadline) == (5.0, 20.0, 30.0)


def test_put_many_stores_every_object_in_order(object_store):
    keys = [f"s43-predictions/test-campaign/SOLUSDC/logreg/fold-{fold:02d}.npz" for fold in range(5)]
    infos = object_store.put_many([(key, key.encode()) for key in keys])
    assert [info.key for info in infos] == keys
    assert all(object_store.get(key) == key.encode() and info.sha256 == sha256_hex(key.encode())
               for key, info in zip(keys, infos))


def test_put_many_failure_names_the_key_that_failed(storage_root):
    store = LocalObjectStore(storage_root)
    store.put("s43-predictions/blocked", b"a file where a directory must go")
    with pytest.raises(StorageError, match="blocked/fold-00.npz") as raised:
        store.put_many([(KEY, b"ok"), ("s43-predictions/blocked/fold-00.npz", b"x")])
    assert raised.value.key == "s43-predictions/blocked/fold-00.npz"
