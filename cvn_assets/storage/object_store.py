"""Object storage with two backends of identical semantics: a local directory and S3.

Both store bytes under S3-style keys with a SHA-256 that is verified on every read, answer
existence with a metadata lookup (HEAD, never a download), replace an object atomically (a
concurrent reader sees the old or the new bytes, never a torn mix), and translate their own
errors into the three exceptions below, so callers never ask which backend they run on.

Local layout (``root`` mirrors the bucket)::

    root/.cvn-objects/ab/ab12…ef      immutable content file, named by its SHA-256
    root/s43-predictions/…/fold-00.npz  symlink to its content file (the key)

Writing a key stores the content file (temp file + fsync + rename), then swaps the key's
symlink with a rename. The checksum travels with the link target, so the pair (bytes, sha256)
is replaced in one atomic step — the same guarantee S3 gives for an object and its metadata.
Content files no longer referenced by any key are removed by ``collect_garbage``.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError, IncompleteReadError

from cvn_assets.redaction import redact_text, redact_url

T = TypeVar("T")

KEY_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
SHA256_METADATA = "sha256"  # S3 user metadata: x-amz-meta-sha256
CONTENT_DIR = ".cvn-objects"
READ_CHUNK = 1024 * 1024  # a blob (~330 KB) is one chunk: hashed as it arrives, never joined
SCENARIO_C = "runbook scenario C: `cvn s3 check`"
# S3 answers worth another attempt (besides connection errors, timeouts and torn bodies).
TRANSIENT_CODES = frozenset({"500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown",
                             "RequestTimeout", "Throttling", "ThrottlingException", "RequestLimitExceeded"})


class ObjectNotFound(LookupError):
    """The key does not exist in the store."""

    def __init__(self, uri: str):
        self.uri = uri
        super().__init__(f"object not found: {uri}")


class IntegrityError(ValueError):
    """The bytes read do not match the SHA-256 stored with them."""

    def __init__(self, uri: str, expected: str | None, found: str):
        self.uri = uri
        self.expected = expected
        self.found = found
        super().__init__(f"checksum mismatch at {uri}: stored sha256 {expected}, bytes hash to {found}")


class ObjectExists(FileExistsError):
    """A create-only write found the key taken: another writer created it first."""

    def __init__(self, uri: str):
        self.uri = uri
        super().__init__(f"object exists already: {uri}")


class StorageError(RuntimeError):
    """The store could not be reached or refused the operation (endpoint, credentials, bucket)."""

    def __init__(self, message: str, key: str = ""):
        super().__init__(message)
        self.key = key


class ObjectTooLarge(ValueError):
    """The object is longer than the caller accepts; refused from its length, its body unread."""

    def __init__(self, uri: str, size: int, limit: int):
        self.uri = uri
        self.size = size
        self.limit = limit
        super().__init__(f"object too large at {uri}: expected at most {limit} bytes, found {size} (body not read)")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    sha256: str | None
    uri: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_hashed(read: Any, size: int, deadline: float | None = None) -> tuple[bytes, str]:
    """Read exactly ``size`` bytes with ``read(n)``, hashing each chunk as it arrives: (bytes, sha256).

    One chunk (the usual blob) is returned as is, with no join; ``deadline`` (monotonic seconds)
    is checked between chunks.
    """
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"deadline passed with {remaining} of {size} bytes still to read")
        chunk = read(min(READ_CHUNK, remaining))
        if not chunk:
            raise IncompleteReadError(actual_bytes=size - remaining, expected_bytes=size)
        digest.update(chunk)
        chunks.append(chunk)
        remaining -= len(chunk)
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), digest.hexdigest()


def validate_key(key: str) -> str:
    """Keys are relative, '/'-separated, with no empty, hidden or '..' segment."""
    segments = key.split("/") if isinstance(key, str) else []
    if not segments or any(KEY_SEGMENT.fullmatch(segment) is None for segment in segments):
        raise ValueError(
            f"object key {key!r} is invalid: expected '/'-separated segments matching {KEY_SEGMENT.pattern}"
        )
    return key


class ObjectStore(ABC):
    """Bytes under keys, with a verified SHA-256. Implementations override only these primitives."""

    #: Concurrent reads/writes that pay on this backend (a cohort load's thread pool).
    concurrency: int = 8

    @abstractmethod
    def uri(self, key: str) -> str:
        """Address of a key (or of a prefix ending in '/') for messages and metadata."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        """Store ``data`` at ``key`` atomically and return what was stored."""

    def put_many(self, items: Sequence[tuple[str, bytes]], content_type: str = "application/octet-stream",
                 max_workers: int = 8) -> list[ObjectInfo]:
        """Store several objects, each atomically as ``put`` does, concurrently; in ``items`` order.

        A failure raises the ``StorageError`` of the first key that failed (``error.key``).
        """
        def put_one(item: tuple[str, bytes]) -> ObjectInfo:
            key, data = item
            try:
                return self.put(key, data, content_type)
            except StorageError as exc:
                exc.key = exc.key or key
                raise

        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(items)))) as pool:
            return list(pool.map(put_one, items))

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        """Create ``key`` only if no object is there, atomically; raise ObjectExists otherwise.

        Of two concurrent writers exactly one succeeds: the registration of a campaign relies
        on it (the loser re-reads what the winner wrote instead of overwriting it).
        """


    @abstractmethod
    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        """Return the bytes at ``key``, verified against their SHA-256 while they are read.

        Raise ObjectNotFound, IntegrityError, or ObjectTooLarge (from the object's length,
        before its body is read) when it is longer than ``max_bytes``.
        """

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` exists, by a metadata lookup only."""

    @abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Metadata of ``key`` (size, stored sha256); raise ObjectNotFound."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing an absent key is not an error (as in S3)."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""

    @abstractmethod
    def describe(self) -> str:
        """Where the objects live, for messages (never includes credentials)."""


class LocalObjectStore(ObjectStore):
    """A local directory mirroring S3 keys (the embedded default backend)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).absolute()
        # Page-cache reads, hashing and checks are CPU work that releases the GIL: beyond two
        # threads per core they only queue.
        self.concurrency = min(8, 2 * (os.cpu_count() or 1))

    def uri(self, key: str) -> str:
        validate_key(key.rstrip("/"))
        return (self.root / key).as_uri() + ("/" if key.endswith("/") else "")

    def describe(self) -> str:
        return f"local directory {self.root}"

    def _content_path(self, sha: str) -> Path:
        return self.root / CONTENT_DIR / sha[:2] / sha

    def _write_content(self, data: bytes, sha: str) -> Path:
        """The content file of ``data``, its bytes fsync'd; its directory is synced by the caller."""
        target = self._content_path(sha)
        if target.exists() and sha256_hex(target.read_bytes()) == sha:
            return target  # identical content already stored (and still intact): share it
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{sha}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        return target

    def _link(self, path: Path, target: Path) -> None:
        """Point the key ``path`` at ``target`` in one rename; its directory is synced by the caller."""
        path.parent.mkdir(parents=True, exist_ok=True)
        link = path.with_name(f".{path.name}.{uuid.uuid4().hex}.lnk")
        os.symlink(os.path.relpath(target, path.parent), link)
        try:
            os.replace(link, path)
        finally:
            link.unlink(missing_ok=True)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        return self.put_many([(key, data)], content_type)[0]

    def put_many(self, items: Sequence[tuple[str, bytes]], content_type: str = "application/octet-stream",
                 max_workers: int = 8) -> list[ObjectInfo]:
        """Content files first (each fsync'd), one sync per directory they landed in, then the keys'
        symlinks, one sync per key directory: a key never points at content that a crash can lose,
        and a step writing 9 blobs syncs each directory once instead of once per blob."""
        paths = [self.root / validate_key(key) for key, _ in items]
        shas = [sha256_hex(data) for _, data in items]
        current = items[0][0] if items else ""
        try:
            targets = []
            for (current, data), sha in zip(items, shas):
                targets.append(self._write_content(data, sha))
            for directory in sorted({target.parent for target in targets}):
                _fsync_dir(directory)
            for (current, _), path, target in zip(items, paths, targets):
                self._link(path, target)
            for directory in sorted({path.parent for path in paths}):
                _fsync_dir(directory)
        except OSError as exc:
            raise StorageError(f"cannot write {self.uri(current)}: {exc.strerror or exc}", key=current) from exc
        now = _now()
        return [ObjectInfo(key=key, size=len(data), last_modified=now, sha256=sha, uri=self.uri(key))
                for (key, data), sha in zip(items, shas)]

    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        path = self.root / validate_key(key)
        sha = sha256_hex(data)
        try:
            target = self._write_content(data, sha)
            path.parent.mkdir(parents=True, exist_ok=True)
            # symlink(2) creates the key or fails if any entry is there: the create-only step.
            os.symlink(os.path.relpath(target, path.parent), path)
            _fsync_dir(path.parent)
        except FileExistsError:
            raise ObjectExists(self.uri(key)) from None
        except OSError as exc:
            raise StorageError(f"cannot write {self.uri(key)}: {exc.strerror or exc}") from exc
        return ObjectInfo(key=key, size=len(data), last_modified=_now(), sha256=sha, uri=self.uri(key))

    def _resolve(self, key: str) -> tuple[Path, str]:
        """The content file a key points at, and the sha256 its name records."""
        path = self.root / validate_key(key)
        try:
            target = os.readlink(path)
        except FileNotFoundError:
            raise ObjectNotFound(self.uri(key)) from None
        except OSError as exc:
            if path.is_file():
                raise IntegrityError(self.uri(key), None, "a plain file not written by cvn (no stored checksum)") from None
            raise StorageError(f"cannot read {self.uri(key)}: {exc.strerror or exc}") from exc
        # The link is relative and written by put (never through another symlink): joining it
        # lexically finds the content file without resolve()'s lstat of every path component.
        content = Path(os.path.normpath(os.path.join(path.parent, target)))
        return content, content.name

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        content, expected = self._resolve(key)
        try:
            with open(content, "rb", buffering=0) as handle:
                size = os.fstat(handle.fileno()).st_size
                if max_bytes is not None and size > max_bytes:
                    raise ObjectTooLarge(self.uri(key), size, max_bytes)
                data, found = read_hashed(handle.read, size)
        except FileNotFoundError:
            raise IntegrityError(self.uri(key), expected, "nothing: its content file is gone") from None
        except IncompleteReadError:
            raise IntegrityError(self.uri(key), expected, "a content file that shrank while read") from None
        if found != expected:
            raise IntegrityError(self.uri(key), expected, found)
        return data

    def exists(self, key: str) -> bool:
        return os.path.lexists(self.root / validate_key(key))

    def head(self, key: str) -> ObjectInfo:
        content, sha = self._resolve(key)
        path = self.root / key
        try:
            size = content.stat().st_size
        except FileNotFoundError:
            raise IntegrityError(self.uri(key), sha, "nothing: its content file is gone") from None
        modified = datetime.fromtimestamp(path.lstat().st_mtime, tz=UTC)
        return ObjectInfo(key=key, size=size, last_modified=modified, sha256=sha, uri=self.uri(key))

    def delete(self, key: str) -> None:
        try:
            (self.root / validate_key(key)).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {self.uri(key)}: {exc.strerror or exc}") from exc

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        keys = []
        for directory, subdirs, files in os.walk(base):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for name in files:
                if name.startswith("."):
                    continue
                key = Path(directory, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        for key in sorted(keys):
            try:
                yield self.head(key)
            except ObjectNotFound:
                continue  # deleted between the walk and the lookup: not listed, as in S3

    def collect_garbage(self, min_age_seconds: float = 3600.0) -> int:
        """Remove content files that no key points at and that are older than ``min_age_seconds``.

        The age guard protects a concurrent ``put``: its content file exists for a moment before
        the key's symlink points at it, and must not be collected in between.
        """
        referenced = set()
        for directory, subdirs, files in os.walk(self.root):
            subdirs[:] = [d for d in subdirs if d != CONTENT_DIR]
            for name in files:
                path = Path(directory, name)
                if path.is_symlink():
                    referenced.add((path.parent / os.readlink(path)).resolve())
        removed = 0
        content_root = self.root / CONTENT_DIR
        cutoff = time.time() - min_age_seconds
        if content_root.is_dir():
            for content in content_root.glob("*/*"):
                if content.name.startswith(".") or content.resolve() in referenced:
                    continue
                if content.stat().st_mtime <= cutoff:
                    content.unlink(missing_ok=True)
                    removed += 1
        return removed


class S3ObjectStore(ObjectStore):
    """An S3 bucket (AWS, Scaleway, MinIO, moto) through a boto3 client.

    This class owns the attempts (the client is built with botocore retries off, see
    ``storage/factory.py``) so that one budget covers what botocore cannot retry: a GET whose
    body is torn or whose bytes fail their checksum is read again, within ``max_attempts`` and
    ``deadline`` seconds, before the object is called corrupt. A PUT whose every attempt lost
    its acknowledgement counts as written when the object is found complete and verified.
    """

    concurrency = 16  # a GET is mostly waiting on the network: as many as the client's HTTP pool

    def __init__(self, client: Any, bucket: str, endpoint_url: str | None = None, max_attempts: int = 3,
                 deadline: float = 60.0, backoff: float = 0.1):
        self.client = client
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.max_attempts = max_attempts
        self.deadline = deadline
        self.backoff = backoff

    def uri(self, key: str) -> str:
        validate_key(key.rstrip("/"))
        return f"s3://{self.bucket}/{key}"

    def describe(self) -> str:
        where = f" at {redact_url(self.endpoint_url)}" if self.endpoint_url else ""
        return f"S3 bucket {self.bucket}{where}"

    def _detail(self, exc: BaseException) -> str:
        text = str(exc)
        if self.endpoint_url:  # botocore messages embed the request URL
            text = text.replace(self.endpoint_url, redact_url(self.endpoint_url))
        return text

    def _fail(self, action: str, key: str, exc: Exception, attempts: int = 1, started: float | None = None) -> Exception:
        where = f"s3://{self.bucket}/{key}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in {"NoSuchKey", "404", "NotFound"}:
                return ObjectNotFound(where)
            detail = f"{code} {error.get('Message', '')}".strip()
        else:
            detail = f"{type(exc).__name__}: {self._detail(exc)}"
        tried = ""
        if started is not None:
            tried = (f" after {attempts} attempt(s) in {time.monotonic() - started:.1f} s "
                     f"(CVN_S3_MAX_ATTEMPTS={self.max_attempts}, CVN_S3_DEADLINE={self.deadline:g} s)")
        return StorageError(redact_text(f"cannot {action} {where} on {self.describe()}{tried}: {detail} ({SCENARIO_C})"))

    def _attempts(self, action: str, key: str, operation: Any) -> Any:
        """Run ``operation(deadline)`` until it succeeds, fails for good, or the budget is spent.

        Transient failures (connection, timeout, torn body, 5xx / throttling, checksum mismatch)
        are retried with jittered exponential backoff; the last one is raised: IntegrityError
        for a checksum that never matched, StorageError otherwise.
        """
        started = time.monotonic()
        deadline = started + self.deadline
        attempt = 0
        while True:
            attempt += 1
            try:
                return operation(deadline)
            except (BotoCoreError, ClientError, TimeoutError, IntegrityError) as exc:
                if not _transient(exc):
                    raise self._fail(action, key, exc) from None
                wait = min(self.backoff * 2 ** (attempt - 1), 2.0) * random.uniform(0.5, 1.0)
                if attempt >= self.max_attempts or time.monotonic() + wait >= deadline:
                    if isinstance(exc, IntegrityError):
                        raise
                    raise self._fail(action, key, exc, attempt, started) from None
            time.sleep(wait)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        sha = sha256_hex(data)
        validate_key(key)

        def attempt(deadline: float) -> None:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                   Metadata={SHA256_METADATA: sha})

        try:
            self._attempts("write", key, attempt)
        except StorageError:
            # The acknowledgement may be what was lost (connection reset after S3 stored the
            # object): the write succeeded iff the complete object, with our checksum, is there.
            if not self._stored(key, sha, len(data)):
                raise
        return ObjectInfo(key=key, size=len(data), last_modified=_now(), sha256=sha, uri=self.uri(key))

    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        sha = sha256_hex(data)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=validate_key(key), Body=data, ContentType=content_type,
                Metadata={SHA256_METADATA: sha}, IfNoneMatch="*",
            )
        except ClientError as exc:
            # 412: the key exists. 409: a concurrent conditional write to the key is in flight
            # (S3 lets exactly one of them win) — either way this writer did not create it.
            if _conditional_write_lost(exc):
                raise ObjectExists(self.uri(key)) from None
            raise self._fail("write", key, exc) from None
        except BotoCoreError as exc:
            raise self._fail("write", key, exc) from None
        return ObjectInfo(key=key, size=len(data), last_modified=_now(), sha256=sha, uri=self.uri(key))

    def _stored(self, key: str, sha: str, size: int) -> bool:
        try:
            info = self.head(key)
            if (info.sha256, info.size) != (sha, size):
                return False
            self.get(key, max_bytes=size)  # the bytes hash to the stored checksum, which is ours
        except (StorageError, ObjectNotFound, IntegrityError, ObjectTooLarge):
            return False
        return True

    def get(self, key: str, max_bytes: int | None = None) -> bytes:
        validate_key(key)
        uri = self.uri(key)

        def attempt(deadline: float) -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"]
            try:
                size = int(response["ContentLength"])
                if max_bytes is not None and size > max_bytes:
                    raise ObjectTooLarge(uri, size, max_bytes)
                data, found = read_hashed(body.read, size, deadline)
            finally:
                body.close()
            expected = response.get("Metadata", {}).get(SHA256_METADATA)
            if found != expected:
                raise IntegrityError(uri, expected, found)
            return data

        return self._attempts("read", key, attempt)

    def head(self, key: str) -> ObjectInfo:
        validate_key(key)
        response = self._attempts(
            "look up", key, lambda deadline: self.client.head_object(Bucket=self.bucket, Key=key))
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            last_modified=response["LastModified"],
            sha256=response.get("Metadata", {}).get(SHA256_METADATA),
            uri=self.uri(key),
        )

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        validate_key(key)
        self._attempts("delete", key, lambda deadline: self.client.delete_object(Bucket=self.bucket, Key=key))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        token: str | None = None
        while True:
            arguments = {"Bucket": self.bucket, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
            page = self._attempts("list", prefix, lambda deadline: self.client.list_objects_v2(**arguments))
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"],
                    size=int(item["Size"]),
                    last_modified=item["LastModified"],
                    sha256=None,  # S3 listings carry no user metadata; head() has it
                    uri=f"s3://{self.bucket}/{item['Key']}",
                )
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return


def _transient(exc: BaseException) -> bool:
    """Worth another attempt: the network, a timeout, a torn body, S3 busy, or bytes changed in transit."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return str(error.get("Code", "")) in TRANSIENT_CODES or status in (429, 500, 502, 503, 504)
    return isinstance(exc, (ConnectionError, HTTPClientError, IncompleteReadError, TimeoutError, IntegrityError))


def _conditional_write_lost(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in {"PreconditionFailed", "ConditionalRequestConflict"} or status == 412


def _now() -> datetime:
    return datetime.now(UTC)


def _fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
