"""Object storage behind one small interface, so the tasks need not know about boto3 or Airflow.

Keys are validated before use: no absolute paths, no ``..`` segments, no control
characters, at most 1,024 bytes, so that no key can escape its prefix or the local root.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import SourceMissingError, UnsafeKeyError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def client_config() -> Any:
    """botocore settings for every client: bounded timeouts, and retries with exponential back-off.

    The standard retry mode retries throttling (503 SlowDown), 5xx replies, timeouts and
    dropped connections, backing off with jitter; the budget is ``$ENHANCE_S3_MAX_ATTEMPTS``
    attempts per call (default 8, about a minute of back-off at most). Past it the error
    fails the task, and Airflow's task retries take over.
    """
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "total_max_attempts": int(os.environ.get("ENHANCE_S3_MAX_ATTEMPTS", "8"))},
        connect_timeout=float(os.environ.get("ENHANCE_S3_CONNECT_TIMEOUT_S", "10")),
        read_timeout=float(os.environ.get("ENHANCE_S3_READ_TIMEOUT_S", "60")),
    )


# What one PUT or server-side copy may carry on S3 (AWS's limit, 5 GiB): a larger object (a
# document of many colour pages enlarged x4 can be) goes up, and is copied, in parts of
# PART_BYTES; S3 takes 10,000 parts, so objects up to 625 GiB.
SINGLE_REQUEST_BYTES = 5 * 2**30
PART_BYTES = 64 * 2**20


def _in_parts() -> Any:
    """boto3's managed transfer: one request up to SINGLE_REQUEST_BYTES, parts past it."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=SINGLE_REQUEST_BYTES + 1, multipart_chunksize=PART_BYTES, max_concurrency=4)


class BucketError(RuntimeError):
    """The bucket cannot be used at all (its name, the keys, the endpoint or the connection is
    wrong): the operator's to put right, said once, before any object is looked at."""


def safe_key(key: str) -> str:
    if not key or len(key.encode("utf-8")) > 1024:
        raise UnsafeKeyError(f"object key must be 1-1024 bytes: {key[:80]!r}")
    if _CONTROL.search(key):
        raise UnsafeKeyError(f"object key contains control characters: {key[:80]!r}")
    if key.startswith("/") or "\\" in key or any(part in ("..", ".") for part in key.split("/")):
        raise UnsafeKeyError(f"object key is absolute or has '.'/'..' segments: {key[:80]!r}")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str
    size: int
    modified: dt.datetime | None = None


class ObjectStore(Protocol):
    def list(self, prefix: str) -> list[ObjectInfo]: ...
    def get(self, key: str) -> bytes: ...
    def put(self, key: str, data: bytes) -> None: ...
    def copy(
        self, source: str, target: str, metadata: dict[str, str] | None = None, *, size: int | None = None
    ) -> None: ...
    def exists(self, key: str) -> bool: ...
    def metadata(self, key: str) -> dict[str, str] | None: ...
    def size(self, key: str) -> int | None: ...
    def sha256(self, key: str) -> str | None: ...
    def delete(self, keys: list[str]) -> None: ...


class S3Store:
    """A bucket through a boto3 S3 client; ``S3Hook(aws_conn_id).get_conn()`` gives one in Airflow."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    def check(self) -> None:
        """One HEAD of the bucket, so that a wrong name or key is told as such: otherwise each
        object of a wrong bucket reads as missing (HEAD of a missing bucket answers 404 too)."""
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"s3://{self.bucket} at {self.client.meta.endpoint_url}"
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise BucketError(f"{where}: no such bucket") from exc
            if code in ("403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise BucketError(f"{where}: access denied ({code}): check the connection's access key and "
                                  "secret, and that they may list this bucket") from exc
            raise BucketError(f"{where}: {code}: {exc.response.get('Error', {}).get('Message', exc)}") from exc
        except BotoCoreError as exc:  # no endpoint, no credentials, a timeout past the retries
            raise BucketError(f"{where}: {exc}") from exc

    def list(self, prefix: str) -> list[ObjectInfo]:
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found.append(ObjectInfo(item["Key"], item["ETag"].strip('"'), int(item["Size"]), item.get("LastModified")))
        return found

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=safe_key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey as exc:
            raise SourceMissingError(f"s3://{self.bucket}/{key} does not exist") from exc

    def put(self, key: str, data: bytes) -> None:
        """One PUT, or a multipart upload past what one PUT takes (S3 refuses it: EntityTooLarge);
        either way the object appears whole or not at all."""
        if len(data) <= SINGLE_REQUEST_BYTES:
            self.client.put_object(Bucket=self.bucket, Key=safe_key(key), Body=data)
        else:
            self.client.upload_fileobj(io.BytesIO(data), self.bucket, safe_key(key), Config=_in_parts())

    def copy(
        self, source: str, target: str, metadata: dict[str, str] | None = None, *, size: int | None = None
    ) -> None:
        """A server-side copy, in parts past what one copy takes; with ``metadata``, the copy's
        user metadata instead of the source's. Where the caller knows the ``size`` (a ledger row
        does) and it is within one copy, that one request; else the managed copy, which first
        asks the server the size (a HEAD) and sets up its threads, for every object."""
        given = {"MetadataDirective": "REPLACE", "Metadata": metadata} if metadata is not None else {}
        origin = {"Bucket": self.bucket, "Key": safe_key(source)}
        if size is not None and size <= SINGLE_REQUEST_BYTES:
            self.client.copy_object(CopySource=origin, Bucket=self.bucket, Key=safe_key(target), **given)
        else:
            self.client.copy(origin, self.bucket, safe_key(target), ExtraArgs=given, Config=_in_parts())

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # the most one DeleteObjects call takes
            batch = [{"Key": safe_key(k)} for k in keys[start : start + 1000]]
            errors = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}).get("Errors")
            if errors:
                raise RuntimeError(f"s3://{self.bucket}: {len(errors)} objects not deleted, e.g. {errors[0]}")

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def metadata(self, key: str) -> dict[str, str] | None:
        """The object's user metadata, or None where there is no object."""
        head = self._head(key)
        return None if head is None else dict(head.get("Metadata", {}))

    def size(self, key: str) -> int | None:
        """The object's length in bytes, or None where there is no object."""
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=safe_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def sha256(self, key: str) -> str | None:
        """The object's sha256, read in chunks (a derivative may be hundreds of MB), or None where there is no object."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=safe_key(key))["Body"]
        except self.client.exceptions.NoSuchKey:
            return None
        digest = hashlib.sha256()
        for chunk in body.iter_chunks(1 << 20):
            digest.update(chunk)
        return digest.hexdigest()


def download(store: ObjectStore, prefix: str, folder: Path) -> list[Path]:
    """Copy every object under ``prefix`` into ``folder`` (key = relative path); no key can land outside it."""
    root, written = folder.resolve(), []
    for item in store.list(prefix):
        path = (root / safe_key(item.key)).resolve()
        if not path.is_relative_to(root):
            raise UnsafeKeyError(f"object key escapes {root}: {item.key!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(store.get(item.key))
        written.append(path)
    return written
