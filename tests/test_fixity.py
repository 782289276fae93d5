"""Fixity: each derivative read back and checked against the sha256 recorded when it was
written, on the real S3 server (SeaweedFS) and a real catalog."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import run_night
from sqlalchemy import text
from test_hardening import DAY, FAST, published_and_held

from enhance_ops import fixity
from enhance_ops.airflow import tasks
from enhance_ops.catalog import Catalog
from enhance_ops.cli import main
from enhance_ops.infra.airflow_env import airflow_env
from enhance_ops.infra.seaweedfs import S3Server
from enhance_ops.review import reject, release
from enhance_ops.samples import photo_crops
from enhance_ops.storage import S3Store


def _as_the_commands_see_it(s3: S3Server, catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The S3 connection the commands reach the bucket through, as the DAGs do; the catalog's URL."""
    for name in ("AIRFLOW_CONN_ARCHIVE_S3", "ENHANCE_S3_CONN_ID"):
        monkeypatch.setenv(name, airflow_env(tmp_path / "airflow", s3, base={})[name])
    return catalog.engine.url.render_as_string(hide_password=False)


def test_each_derivative_is_checked_against_the_sha256_recorded_when_it_was_written(
        s3: S3Server, store: S3Store, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    crops = photo_crops(6, 24, "JPEG")
    for n, data in enumerate(crops[:4]):
        store.put(f"incoming/{DAY}/scan-{n}.jpg", data)
    rows = {r["source_key"]: r for r in run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))}
    for row in rows.values():  # recorded as written: the published object's own bytes
        assert row["output_sha256"] == hashlib.sha256(store.get(row["output_key"])).hexdigest()
    store.put("special/box/copy.jpg", crops[0])
    [copy] = run_night(store, catalog, tasks.RunConfig("copy", DAY, prefix="special/box/", **FAST))
    first = rows[f"incoming/{DAY}/scan-0.jpg"]
    assert (copy["status"], copy["output_key"], copy["output_sha256"]) == ("duplicate", first["output_key"],
                                                                           first["output_sha256"])
    for n, data in enumerate(crops[4:], start=4):  # two held back, then one released and one rejected
        store.put(f"incoming/{DAY}/held-{n}.jpg", data)
    strict = tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",))
    kept, dropped = sorted(r["output_key"] for r in run_night(store, catalog, strict))
    [released] = release(store, catalog, [kept], by="A. Archivist", reason="fine")
    [rejected] = reject(store, catalog, [dropped], by="A. Archivist", reason="smeared")
    assert released["output_sha256"] == hashlib.sha256(store.get(released["output_key"])).hexdigest()
    assert rejected["output_sha256"] is None
    expected = sorted([r["output_key"] for r in rows.values()] + [released["output_key"]])
    assert list(catalog.derivatives(page=2)) == list(catalog.derivatives())  # pages of two keys: the same
    assert [(c.key, c.state) for c in fixity.check(store, catalog)] == [(key, "intact") for key in expected]
    for parts in (1, 2, 3, 9):  # the runs of keys the weekly DAG's mapped checks read: each key once, in order
        ranges = fixity.ranges(catalog, "", parts)
        assert len(ranges) == min(parts, len(expected)) and ranges[0][0] is None and ranges[-1][1] is None
        assert [c.key for after, through in ranges for c in fixity.check(store, catalog, "", after, through)] == expected
    assert fixity.ranges(catalog, "nothing/", 4) == [(None, None)]

    keys = [rows[f"incoming/{DAY}/scan-{n}.jpg"]["output_key"] for n in range(4)]
    data = store.get(keys[0])
    rotten = data[:100] + bytes([data[100] ^ 1]) + data[101:]  # one bit flipped where it lies: metadata kept
    store.client.put_object(Bucket=store.bucket, Key=keys[0], Body=rotten,
                            Metadata=tasks.mark(f"incoming/{DAY}/scan-0.jpg"))
    store.put(keys[1], b"retouched by hand")
    store.delete([keys[2]])
    with catalog.engine.begin() as conn:  # as a catalog row written before checksums were recorded
        conn.execute(text("UPDATE processed_images SET output_sha256 = NULL WHERE output_key = :key"), {"key": keys[3]})
    found = {c.key: c for c in fixity.check(store, catalog)}
    assert {key: c.state for key, c in found.items()} == {
        keys[0]: "changed", keys[1]: "changed", keys[2]: "missing", keys[3]: "unrecorded",
        released["output_key"]: "intact"}
    assert found[keys[0]].detail == (f"sha256 {hashlib.sha256(rotten).hexdigest()}, recorded {first['output_sha256']} "
                                     "by run night; it carries the pipeline's mark: changed in storage")
    assert found[keys[1]].detail.endswith("it lacks the pipeline's mark: replaced or edited by hand")
    assert found[keys[2]].detail == "written by run night, not in the bucket"

    url = _as_the_commands_see_it(s3, catalog, tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(["verify", "--bucket", store.bucket, "--catalog", url]) == 1
    out = capsys.readouterr()
    assert [line.split("\t")[:2] for line in out.out.splitlines()] == [
        [found[key].state, key] for key in sorted(found) if found[key].state != "intact"]
    assert out.err.splitlines()[-1] == ("checked 5 derivatives: 1 intact, 2 changed, 1 missing, "
                                        "1 written before checksums were recorded")
    assert main(["verify", "--bucket", store.bucket, "--catalog", url, "--prefix", released["output_key"]]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"checked 1 derivative under {released['output_key']}: 1 intact, 0 changed, 0 missing, "
        "0 written before checksums were recorded")


def test_a_derivative_made_again_or_superseded_after_the_check_listed_it_is_not_reported(
        store: S3Store, catalog: Catalog) -> None:
    night, held = published_and_held(store, catalog)
    listed = {row["output_key"]: row for row in catalog.derivatives()}  # the check's listing, then runs while it reads
    run_night(store, catalog, tasks.RunConfig("again", DAY, force=True, **FAST, overrides=("sharpen.amount=0.3",)))
    [new] = run_night(store, catalog, tasks.RunConfig("next", held["logical_date"], force=True, **FAST))
    assert new["output_key"] != held["output_key"] and not store.exists(held["output_key"])  # superseded, deleted

    remade, superseded = listed[night["output_key"]], listed[held["output_key"]]
    assert [fixity._compared(store, catalog, row).state for row in (remade, superseded)] == ["changed", "missing"]
    assert fixity._checked(store, catalog, remade) == fixity.Checked(night["output_key"], night["source_key"], "again",
                                                                     "intact")
    assert fixity._checked(store, catalog, superseded) is None  # no longer expected in the bucket


def test_a_derivative_released_for_copies_alone_changed_in_storage_is_not_taken_for_one_replaced_by_hand(
        store: S3Store, catalog: Catalog) -> None:
    key, copies = f"incoming/{DAY}/scan.jpg", ["special/box/a.jpg", "special/box/b.jpg"]
    first, second = photo_crops(2, 24, "JPEG")
    store.put(key, first)
    [held] = run_night(store, catalog, tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",)))
    for copy in copies:
        store.put(copy, first)
    run_night(store, catalog, tasks.RunConfig("copies", DAY, prefix="special/box/", **FAST))
    store.put(key, second)  # the master re-scanned: the held derivative is the copies' alone
    run_night(store, catalog, tasks.RunConfig("next", DAY, **FAST))
    rows = release(store, catalog, [held["output_key"]], by="A. Archivist", reason="fine")
    assert sorted(r["source_key"] for r in rows) == copies
    [released] = {r["output_key"] for r in rows}
    [listed] = catalog.derivatives(released)
    assert listed["source_key"] == copies[1]  # the latest row, not the copy whose mark the derivative carries

    data, metadata = store.get(released), store.metadata(released)
    assert metadata == tasks.mark(copies[0])
    store.client.put_object(Bucket=store.bucket, Key=released, Body=data[:100] + bytes([data[100] ^ 1]) + data[101:],
                            Metadata=metadata)  # a storage fault: the metadata kept
    [rotten] = fixity.check(store, catalog, released)
    assert rotten.state == "changed" and rotten.detail.endswith("it carries the pipeline's mark: changed in storage")
    store.put(released, data)  # put back by hand, without the metadata: the recorded bytes, though
    assert [c.state for c in fixity.check(store, catalog, released)] == ["intact"]
    store.put(released, b"retouched by hand")
    [retouched] = fixity.check(store, catalog, released)
    assert retouched.state == "changed"
    assert retouched.detail.endswith("it lacks the pipeline's mark: replaced or edited by hand")


def test_derivatives_written_before_checksums_were_recorded_adopt_what_the_bucket_holds_if_it_is_the_pipelines(
        s3: S3Server, store: S3Store, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for n, data in enumerate(photo_crops(4, 24, "JPEG")):
        store.put(f"incoming/{DAY}/scan-{n}.jpg", data)
    keys = sorted(r["output_key"] for r in run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST)))
    with catalog.engine.begin() as conn:  # three of them as a catalog written before checksums were recorded
        conn.execute(text("UPDATE processed_images SET output_sha256 = NULL WHERE output_key IN (:a, :b, :c)"),
                     {"a": keys[0], "b": keys[1], "c": keys[2]})
    store.put(keys[1], b"retouched by hand")  # no pipeline mark
    store.delete([keys[2]])
    url = _as_the_commands_see_it(s3, catalog, tmp_path, monkeypatch)
    capsys.readouterr()

    assert main(["adopt-checksums", "--bucket", store.bucket, "--catalog", url]) == 1
    out = capsys.readouterr()
    assert [line.split("\t")[:2] for line in out.out.splitlines()] == [
        ["adopted", keys[0]], ["not adopted", keys[1]], ["missing", keys[2]]]  # keys[3] has its checksum already
    assert out.err.splitlines()[-1] == ("adopted 1 of 3 derivatives written before checksums were recorded; "
                                        "1 missing, 1 not adopted")
    states = {c.key: c.state for c in fixity.check(store, catalog)}
    assert states == {keys[0]: "intact", keys[1]: "unrecorded", keys[2]: "missing", keys[3]: "intact"}
    assert list(fixity.adopt(store, catalog, keys[0])) == []  # once adopted, never again

    data = store.get(keys[0])  # from now on held to what it was adopted as
    store.client.put_object(Bucket=store.bucket, Key=keys[0], Body=data[:100] + bytes([data[100] ^ 1]) + data[101:],
                            Metadata=tasks.mark(f"incoming/{DAY}/scan-0.jpg"))
    assert {c.key: c.state for c in fixity.check(store, catalog, keys[0])}[keys[0]] == "changed"


def test_a_command_pointed_at_a_wrong_bucket_key_endpoint_or_connection_says_which_in_one_line(
        s3: S3Server, store: S3Store, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store.put(f"incoming/{DAY}/one.jpg", photo_crops(1, 24, "JPEG")[0])
    [row] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
    with catalog.engine.begin() as conn:  # one written before checksums: of a wrong bucket, it read as missing
        conn.execute(text("UPDATE processed_images SET output_sha256 = NULL WHERE output_key = :key"),
                     {"key": row["output_key"]})
    url = _as_the_commands_see_it(s3, catalog, tmp_path, monkeypatch)
    monkeypatch.setenv("ENHANCE_S3_MAX_ATTEMPTS", "1")  # a refused connection, not retried for seconds
    where = f"s3://elsewhere at {s3.endpoint}"
    connection = json.loads(os.environ["AIRFLOW_CONN_ARCHIVE_S3"])
    wrong_key = json.dumps({**connection, "password": "not-the-secret"})
    nowhere = json.dumps({**connection, "extra": {**connection["extra"], "endpoint_url": "http://127.0.0.1:9"}})
    cases = [
        ({}, "elsewhere", f"error: {where}: no such bucket"),
        ({"AIRFLOW_CONN_ARCHIVE_S3": wrong_key}, store.bucket,
         f"error: s3://{store.bucket} at {s3.endpoint}: access denied (403): check the connection's access key and "
         "secret, and that they may list this bucket"),
        ({"AIRFLOW_CONN_ARCHIVE_S3": nowhere}, store.bucket,
         f'error: s3://{store.bucket} at http://127.0.0.1:9: Could not connect to the endpoint URL: '
         f'"http://127.0.0.1:9/{store.bucket}"'),
        ({"ENHANCE_S3_CONN_ID": "archive_s4"}, store.bucket,
         f"error: s3://{store.bucket}: there is no Airflow connection 'archive_s4' ($ENHANCE_S3_CONN_ID): "
         "define it (AIRFLOW_CONN_ARCHIVE_S4, or in the UI) with the endpoint and keys"),
    ]
    for env, bucket, said in cases:
        with monkeypatch.context() as patched:
            for name, value in env.items():
                patched.setenv(name, value)
            for command in (["verify"], ["adopt-checksums"], ["catalog-rebuild"],
                            ["release", "--by", "A. Archivist", "--reason", "fine", row["output_key"]]):
                capsys.readouterr()
                assert main([*command, "--bucket", bucket, "--catalog", url]) == 2, (command, env)
                out = capsys.readouterr()
                assert (out.out, out.err.splitlines()[-1]) == ("", said), (command, env)
    assert [c.state for c in fixity.check(store, catalog)] == ["unrecorded"]  # nothing changed meanwhile
