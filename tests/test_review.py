"""An archivist's release or rejection of a quarantined derivative, on the real S3 server (SeaweedFS)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from conftest import run_night
from test_hardening import DAY, FAST

from enhance_ops.airflow import tasks
from enhance_ops.catalog import Catalog, rebuild
from enhance_ops.quality.ledger import from_parquet
from enhance_ops.cli import main
from enhance_ops.infra.airflow_env import airflow_env
from enhance_ops.infra.seaweedfs import S3Server
from enhance_ops.review import ReviewError, awaiting, reject, release
from enhance_ops.samples import photo_crops
from enhance_ops.storage import S3Store

BY, WHY = "A. Archivist", "checked against the print"


def test_a_released_derivative_moves_to_enhanced_and_the_ledger_and_catalog_say_so(
        store: S3Store, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n, data in enumerate(photo_crops(2, 24, "JPEG")):
        store.put(f"incoming/{DAY}/scan-{n}.jpg", data)
    strict = tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",))  # holds back everything
    held = sorted(r["output_key"] for r in run_night(store, catalog, strict))
    assert [k.split("/", 1)[0] for k in held] == ["quarantine", "quarantine"]
    data = store.get(held[0])
    report = store.get(f"reports/{DAY}/strict.html").decode()
    assert held[0] in report and "review_quarantined" in report  # the reviewer sees the key and the way
    assert "In all, 2 quarantined derivatives await review, from 1 run (this one included)" in report
    with pytest.raises(ReviewError, match="why"):
        release(store, catalog, held[:1], by=BY, reason=" ")

    assert [r["output_key"] for r in awaiting(catalog)] == held  # the review queue
    [row] = release(store, catalog, held[:1], by=BY, reason=WHY)

    assert row["output_key"] == "enhanced/" + held[0].split("/", 1)[1] and store.get(row["output_key"]) == data
    assert not store.exists(held[0]) and store.exists(held[1])  # moved, the other left for review
    assert row["verdict"] == "passed" and row["failed_expectations"]  # what the gate found stays on record
    assert f"released from quarantine by {BY}: {WHY}" in row["notes"]
    entry = catalog.published([row["output_key"]]).get(row["output_key"])
    assert entry is not None and entry["verdict"] == "passed" and entry["source_key"] == row["source_key"]
    rebuilt = Catalog(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    rebuild(rebuilt, [r for o in store.list("ledger/") for r in from_parquet(store.get(o.key))])
    assert rebuilt.rows() == catalog.rows()  # the ledger alone tells the same story
    for key in (held[0], row["output_key"], f"incoming/{DAY}/scan-1.jpg"):  # released already; not quarantined
        with pytest.raises(ReviewError, match="not a quarantined derivative"):
            release(store, catalog, [key, held[1]], by=BY, reason=WHY)
    assert store.exists(held[1])  # a refused call moves nothing
    assert main(["review-queue", "--catalog", catalog.engine.url.render_as_string(hide_password=False)]) == 0
    listed = capsys.readouterr()
    assert listed.out.split("\t")[0] == held[1] and "1 quarantined derivative awaits review" in listed.err
    later = DAY + dt.timedelta(days=1)
    store.put(f"incoming/{later}/next.jpg", photo_crops(3, 24, "JPEG")[2])
    assert [r["verdict"] for r in run_night(store, catalog, tasks.RunConfig("later", later, **FAST))] == ["passed"]
    report = store.get(f"reports/{later}/later.html").decode()
    assert "In all, 1 quarantined derivative awaits review, from 1 run: python" in report  # the earlier night's


@pytest.mark.parametrize("again", ["replaced", "forced"])  # with copies pointing at it: the last test
def test_a_derivative_its_master_has_moved_on_from_is_deleted_and_not_released_over_the_new_one(
        store: S3Store, catalog: Catalog, again: str) -> None:
    key = f"incoming/{DAY}/scan.jpg"
    first, second = photo_crops(2, 24, "JPEG")
    store.put(key, first)
    [old] = run_night(store, catalog, tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",)))
    if again == "replaced":
        store.put(key, second)  # the master is scanned again and replaced, and the next run takes it
    [new] = run_night(store, catalog, tasks.RunConfig("next", DAY, **FAST, force=again == "forced"))
    assert old["verdict"] == "quarantined" and new["verdict"] == "passed"
    assert new["output_key"] == "enhanced/" + old["output_key"].split("/", 1)[1]  # the name a release would take
    published = store.get(new["output_key"])
    assert awaiting(catalog) == []  # the quarantined one is no longer the master's: nothing to review
    with pytest.raises(ReviewError, match="superseded: .* processed again by run next"):
        release(store, catalog, [old["output_key"]], by=BY, reason=WHY)
    assert store.get(new["output_key"]) == published  # nothing moved
    assert not store.exists(old["output_key"])
    assert f"supersedes {old['output_key']}, which awaited review: deleted" in new["notes"]
    assert store.get(key) == (first if again == "forced" else second)  # the master untouched


def test_a_rejected_derivative_is_deleted_recorded_and_not_made_again_and_its_copies_follow(
        store: S3Store, catalog: Catalog, tmp_path: Path) -> None:
    scan, other = photo_crops(2, 24, "JPEG")
    store.put(f"incoming/{DAY}/scan.jpg", scan)
    store.put(f"incoming/{DAY}/other.jpg", other)
    strict = tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",))
    held = {r["source_key"]: r for r in run_night(store, catalog, strict)}
    bad, kept = held[f"incoming/{DAY}/scan.jpg"]["output_key"], held[f"incoming/{DAY}/other.jpg"]["output_key"]
    later = DAY + dt.timedelta(days=1)
    store.put(f"incoming/{later}/scan-again.jpg", scan)  # the same content under another key, the next night
    [copy] = run_night(store, catalog, tasks.RunConfig("copy", later, **FAST, gate=strict.gate))
    assert (copy["status"], copy["output_key"], copy["verdict"]) == ("duplicate", bad, "quarantined")
    assert "a copy: identical content already processed as" in store.get(f"reports/{later}/copy.html").decode()

    decided = reject(store, catalog, [bad], by=BY, reason="smeared faces")
    assert [r["source_key"] for r in decided] == [f"incoming/{DAY}/scan.jpg", f"incoming/{later}/scan-again.jpg"]
    assert not store.exists(bad) and store.exists(kept) and store.get(f"incoming/{DAY}/scan.jpg") == scan
    rows = {r["source_key"]: r for o in store.list("ledger/") for r in from_parquet(store.get(o.key))
            if r["run_id"].startswith("reject-")}
    mine, follower = rows[f"incoming/{DAY}/scan.jpg"], rows[f"incoming/{later}/scan-again.jpg"]
    assert (mine["verdict"], mine["output_key"], mine["status"]) == ("rejected", None, "ok")
    assert f"rejected in review by {BY}: smeared faces; {bad} deleted" in mine["notes"]
    assert mine["failed_expectations"] and mine["parameters_json"] == held[f"incoming/{DAY}/scan.jpg"]["parameters_json"]
    assert (follower["status"], follower["verdict"], follower["output_key"]) == ("duplicate", "rejected", None)
    assert f"follows the reject of {bad}, the derivative of incoming/{DAY}/scan.jpg" in follower["notes"]
    assert [r["output_key"] for r in awaiting(catalog)] == [kept]  # out of the queue
    rebuilt = Catalog(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    rebuild(rebuilt, [r for o in store.list("ledger/") for r in from_parquet(store.get(o.key))])
    assert rebuilt.rows() == catalog.rows()

    for decide in (release, reject):  # decided already: neither may act on it again
        with pytest.raises(ReviewError, match="rejected already, by run reject-"):
            decide(store, catalog, [bad], by=BY, reason=WHY)
    third = later + dt.timedelta(days=1)
    store.put(f"incoming/{third}/scan-third.jpg", scan)  # the rejected content is not enhanced again
    [again] = run_night(store, catalog, tasks.RunConfig("third", third, **FAST))
    assert (again["status"], again["verdict"], again["output_key"]) == ("duplicate", "rejected", None)
    report = store.get(f"reports/{third}/third.html").decode()
    assert "1 rejected" in report and "a copy: identical content already processed as" in report


def test_a_released_derivative_takes_the_copies_that_point_at_it_along(store: S3Store, catalog: Catalog) -> None:
    [scan] = photo_crops(1, 24, "JPEG")
    store.put(f"incoming/{DAY}/scan.jpg", scan)
    strict = tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",))
    [held] = run_night(store, catalog, strict)
    store.put(f"incoming/{DAY}/scan-copy.jpg", scan)
    store.put(f"incoming/{DAY}/scan-copy-2.jpg", scan)
    copies = run_night(store, catalog, tasks.RunConfig("copies", DAY, **FAST))
    assert {(r["status"], r["output_key"]) for r in copies} == {("duplicate", held["output_key"])}
    store.put(f"incoming/{DAY}/scan-copy-2.jpg", photo_crops(2, 24, "JPEG")[1])  # replaced: no longer a copy
    [replaced] = run_night(store, catalog, tasks.RunConfig("replaced", DAY, **FAST))
    assert replaced["status"] == "ok"

    rows = release(store, catalog, [held["output_key"]], by=BY, reason=WHY)
    target = "enhanced/" + held["output_key"].split("/", 1)[1]
    assert [(r["source_key"], r["status"], r["output_key"]) for r in rows] == [
        (f"incoming/{DAY}/scan.jpg", "ok", target), (f"incoming/{DAY}/scan-copy.jpg", "duplicate", target)]
    assert catalog.latest([f"incoming/{DAY}/scan-copy.jpg"])[f"incoming/{DAY}/scan-copy.jpg"]["output_key"] == target
    latest = catalog.latest([f"incoming/{DAY}/scan-copy-2.jpg"])[f"incoming/{DAY}/scan-copy-2.jpg"]
    assert latest["source_sha256"] == replaced["source_sha256"]  # its current content's row, untouched


def test_a_failed_retry_leaves_the_derivative_awaiting_review(store: S3Store, catalog: Catalog, tmp_path: Path) -> None:
    key = f"incoming/{DAY}/scan.jpg"
    store.put(key, photo_crops(1, 24, "JPEG")[0])
    [held] = run_night(store, catalog, tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",)))
    # forced again with a pixel limit the scan breaks: the retry fails, after its bytes were read
    [failed] = run_night(store, catalog, tasks.RunConfig("retry", DAY, **FAST, force=True, max_pixels=100))
    assert (failed["status"], failed["verdict"], failed["source_sha256"]) == ("failed", "failed", held["source_sha256"])
    assert [r["output_key"] for r in awaiting(catalog)] == [held["output_key"]]  # still the master's derivative
    rebuilt = Catalog(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    rebuild(rebuilt, [r for o in store.list("ledger/") for r in from_parquet(store.get(o.key))])
    assert rebuilt.rows() == catalog.rows()
    [row] = release(store, catalog, [held["output_key"]], by=BY, reason=WHY)
    assert store.exists(row["output_key"]) and not store.exists(held["output_key"])


def test_rejecting_a_forced_try_with_other_settings_makes_the_earlier_published_derivative_current_again(
        s3: S3Server, store: S3Store, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"incoming/{DAY}/scan.jpg"
    scan = photo_crops(1, 24, "JPEG")[0]
    store.put(key, scan)
    [first] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
    published = store.get(first["output_key"])
    tried = tasks.RunConfig("tried", DAY, **FAST, force=True, overrides=("sharpen.amount=0.3",),
                            gate=("min_consistency_psnr_db=99",))
    [held] = run_night(store, catalog, tried)
    assert (first["verdict"], held["verdict"]) == ("passed", "quarantined")
    assert held["parameters_json"] != first["parameters_json"]
    assert catalog.latest([key])[key]["output_key"] == held["output_key"]  # the catalog's one row for it

    for name in ("AIRFLOW_CONN_ARCHIVE_S3", "ENHANCE_S3_CONN_ID"):  # the command reaches S3 as the DAGs do
        monkeypatch.setenv(name, airflow_env(tmp_path / "airflow", s3, base={})[name])
    url = catalog.engine.url.render_as_string(hide_password=False)
    assert main(["reject", "--bucket", store.bucket, "--catalog", url, "--by", BY, "--reason", "too sharp",
                 held["output_key"]]) == 0
    assert capsys.readouterr().out.splitlines() == [  # Airflow's log lines go to stderr
        f"rejected {key} → deleted", f"kept {key} → s3://{store.bucket}/{first['output_key']}, its derivative again"]
    assert not store.exists(held["output_key"]) and store.get(first["output_key"]) == published
    rows = [r for o in store.list("ledger/") for r in from_parquet(store.get(o.key)) if r["run_id"].startswith("reject-")]
    assert [(r["verdict"], r["output_key"]) for r in rows] == [("rejected", None), ("passed", first["output_key"])]
    assert rows[1]["parameters_json"] == first["parameters_json"]
    assert (f"{first['output_key']}, made by run night, is again the derivative of {key}: "
            f"{held['output_key']} of the later run tried was rejected") in rows[1]["notes"]
    latest = catalog.latest([key])[key]
    assert (latest["output_key"], latest["verdict"], latest["run_id"]) == (first["output_key"], "passed", rows[1]["run_id"])
    rebuilt = Catalog(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    rebuild(rebuilt, [r for o in store.list("ledger/") for r in from_parquet(store.get(o.key))])
    assert rebuilt.rows() == catalog.rows()
    with pytest.raises(ReviewError, match="rejected already, by run reject-"):
        reject(store, catalog, [held["output_key"]], by=BY, reason=WHY)

    later = DAY + dt.timedelta(days=1)  # a copy made with the first settings reuses the live derivative
    store.put(f"incoming/{later}/scan-copy.jpg", scan)
    [copy] = run_night(store, catalog, tasks.RunConfig("copy", later, **FAST))
    assert (copy["status"], copy["output_key"], copy["verdict"]) == ("duplicate", first["output_key"], "passed")


class _CountingStore(S3Store):
    def __init__(self, store: S3Store) -> None:
        super().__init__(store.client, store.bucket)
        self.reads: list[str] = []

    def get(self, key: str) -> bytes:
        self.reads.append(key)
        return super().get(key)


def test_a_decision_on_many_images_of_a_run_reads_each_of_its_ledger_parts_once(store: S3Store, catalog: Catalog) -> None:
    for n, data in enumerate(photo_crops(3, 24, "JPEG")):
        store.put(f"incoming/{DAY}/scan-{n}.jpg", data)
    strict = tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",), shard_size=1)
    held = [r["output_key"] for r in run_night(store, catalog, strict)]
    counting = _CountingStore(store)
    assert len(release(counting, catalog, held, by=BY, reason=WHY)) == 3
    parts = [o.key for o in store.list(f"ledger/date={DAY}/run=strict/")]
    assert len(parts) == 3 and sorted(k for k in counting.reads if k.startswith("ledger/")) == sorted(parts)

    store.put(f"incoming/{DAY}/other.jpg", photo_crops(4, 24, "JPEG")[3])
    [other] = run_night(store, catalog, dataclasses.replace(strict, run_id="other"))
    counting = _CountingStore(store)  # nothing in enhanced/ under its name: the day's other runs are not read
    reject(counting, catalog, [other["output_key"]], by=BY, reason=WHY)
    assert [k for k in counting.reads if k.startswith("ledger/")] == [f"ledger/date={DAY}/run=other/part-00000.parquet"]


def test_releasing_a_forced_try_over_the_earlier_derivative_says_which_it_replaces(store: S3Store, catalog: Catalog) -> None:
    store.put(f"incoming/{DAY}/scan.jpg", photo_crops(1, 24, "JPEG")[0])
    [first] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
    tried = tasks.RunConfig("tried", DAY, **FAST, force=True, overrides=("sharpen.amount=0.3",),
                            gate=("min_consistency_psnr_db=99",))
    [held] = run_night(store, catalog, tried)
    data = store.get(held["output_key"])
    [row] = release(store, catalog, [held["output_key"]], by=BY, reason=WHY)
    assert row["output_key"] == first["output_key"] and store.get(first["output_key"]) == data
    assert f"replaces the earlier derivative at {first['output_key']}, made by run night" in row["notes"]


def test_a_master_uploaded_again_unchanged_keeps_its_derivative_awaiting_review(store: S3Store, catalog: Catalog) -> None:
    key = f"incoming/{DAY}/scan.jpg"
    data = photo_crops(1, 24, "JPEG")[0]
    store.put(key, data)
    strict = tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",))
    [held] = run_night(store, catalog, strict)
    upload = store.client.create_multipart_upload(Bucket=store.bucket, Key=key)  # the same bytes, a new ETag
    part = store.client.upload_part(Bucket=store.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=data)
    store.client.complete_multipart_upload(Bucket=store.bucket, Key=key, UploadId=upload["UploadId"],
                                           MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    [etag] = [o.etag for o in store.list(key)]
    assert etag != held["source_etag"]

    [again] = run_night(store, catalog, tasks.RunConfig("again", DAY, **FAST))
    assert (again["status"], again["output_key"], again["verdict"]) == ("duplicate", held["output_key"], "quarantined")
    assert "uploaded again unchanged (a new ETag, the same bytes): processed already by run strict" in again["notes"]
    assert [r["output_key"] for r in awaiting(catalog)] == [held["output_key"]]  # still to be decided
    assert run_night(store, catalog, tasks.RunConfig("third", DAY, **FAST)) == []  # its new ETag is known
    [row] = release(store, catalog, [held["output_key"]], by=BY, reason=WHY)
    assert (row["status"], row["source_etag"]) == ("ok", etag) and store.exists(row["output_key"])
    assert run_night(store, catalog, tasks.RunConfig("fourth", DAY, **FAST)) == []


@pytest.mark.parametrize("how", ["published", "released"])
def test_a_rescans_derivative_goes_beside_the_one_that_copies_of_the_earlier_scan_point_at(
        store: S3Store, catalog: Catalog, how: str) -> None:
    key = f"incoming/{DAY}/cat.jpg"
    first, rescan = photo_crops(2, 24, "JPEG")
    store.put(key, first)
    [night] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
    kept = store.get(night["output_key"])
    store.put("special/box/cat-copy.jpg", first)
    [copy] = run_night(store, catalog, tasks.RunConfig("copy", DAY, prefix="special/box/", **FAST))
    assert (copy["status"], copy["output_key"]) == ("duplicate", night["output_key"])

    store.put(key, rescan)  # re-scanned, in place
    strict = ("min_consistency_psnr_db=99",) if how == "released" else ()
    [new] = run_night(store, catalog, tasks.RunConfig("rescan", DAY, **FAST, gate=strict))
    if how == "released":
        [new] = release(store, catalog, [new["output_key"]], by=BY, reason=WHY)
    plain = Path(night["output_key"])
    assert new["output_key"] == str(plain.with_name(f"{plain.stem}~{new['source_sha256'][:8]}{plain.suffix}"))
    assert store.get(night["output_key"]) == kept and store.exists(new["output_key"])  # the copy's, untouched
    assert (f"{plain.name} is the derivative of an earlier scan of this master, which a copy points at "
            "(special/box/cat-copy.jpg)") in " ".join(new["notes"])
    assert catalog.latest([key])[key]["output_key"] == new["output_key"]


@pytest.mark.parametrize("again", ["re-scanned", "forced"])
def test_a_held_derivative_its_master_moved_on_from_is_decided_for_the_copies_that_point_at_it(
        store: S3Store, catalog: Catalog, again: str) -> None:
    key, copy_key = f"incoming/{DAY}/scan.jpg", "special/box/scan-copy.jpg"
    first, second = photo_crops(2, 24, "JPEG")
    store.put(key, first)
    [old] = run_night(store, catalog, tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",)))
    store.put(copy_key, first)
    [copy] = run_night(store, catalog, tasks.RunConfig("copy", DAY, prefix="special/box/", **FAST))
    assert (copy["status"], copy["output_key"]) == ("duplicate", old["output_key"])
    if again == "re-scanned":
        store.put(key, second)
    [new] = run_night(store, catalog, tasks.RunConfig("next", DAY, **FAST, force=again == "forced"))
    assert new["verdict"] == "passed" and store.exists(old["output_key"])  # kept for the copy
    assert [(r["output_key"], r["source_key"]) for r in awaiting(catalog)] == [(old["output_key"], copy_key)]

    if again == "re-scanned":
        [row] = release(store, catalog, [old["output_key"]], by=BY, reason=WHY)
        plain = Path("enhanced/" + old["output_key"].split("/", 1)[1])  # the master's name, which its new scan has
        assert row["output_key"] == str(plain.with_name(f"{plain.stem}~{copy['source_sha256'][:8]}{plain.suffix}"))
        assert store.exists(row["output_key"]) and row["verdict"] == "passed"
    else:
        [row] = reject(store, catalog, [old["output_key"]], by=BY, reason=WHY)
        assert (row["verdict"], row["output_key"]) == ("rejected", None)
    assert (row["source_key"], row["status"]) == (copy_key, "duplicate")
    assert f"its master {key} was processed again by run next" in " ".join(row["notes"])
    assert not store.exists(old["output_key"]) and awaiting(catalog) == []
    with pytest.raises(ReviewError, match="superseded"):  # decided: nothing points at it any more
        release(store, catalog, [old["output_key"]], by=BY, reason=WHY)
    latest = catalog.latest([key, copy_key])
    assert (latest[key]["run_id"], latest[key]["output_key"]) == ("next", new["output_key"])  # the master's, untouched
    assert (latest[copy_key]["output_key"], latest[copy_key]["verdict"]) == (row["output_key"], row["verdict"])


@pytest.mark.parametrize("how", ["published", "released"])
def test_copies_elsewhere_follow_their_contents_derivative_made_again_in_place_with_other_settings(
        store: S3Store, catalog: Catalog, tmp_path: Path, how: str) -> None:
    key, copy_key = f"incoming/{DAY}/scan.jpg", "special/box/scan-copy.jpg"
    scan = photo_crops(1, 24, "JPEG")[0]
    store.put(key, scan)
    [night] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
    before = store.get(night["output_key"])
    store.put(copy_key, scan)
    later = DAY + dt.timedelta(days=3)  # a backfill's box, filed under another day
    [copy] = run_night(store, catalog, tasks.RunConfig("copy", later, prefix="special/box/", **FAST))
    assert (copy["status"], copy["output_key"]) == ("duplicate", night["output_key"])

    strict = ("min_consistency_psnr_db=99",) if how == "released" else ()
    again = tasks.RunConfig("again", DAY, **FAST, force=True, overrides=("sharpen.amount=0.3",), gate=strict)
    rows = run_night(store, catalog, again)
    if how == "released":
        [held] = rows
        rows = release(store, catalog, [held["output_key"]], by=BY, reason=WHY)
    made, follows = rows
    assert made["output_key"] == night["output_key"] and store.get(night["output_key"]) != before  # in place
    assert (follows["source_key"], follows["status"], follows["output_key"], follows["verdict"]) == (
        copy_key, "duplicate", night["output_key"], "passed")
    assert (follows["run_id"], follows["logical_date"]) == (made["run_id"], copy["logical_date"])
    assert f"identical content already processed as {key} by run {made['run_id']}" in follows["notes"]
    assert (f"its derivative {night['output_key']} was made again by run {made['run_id']}, "
            "replacing the one run night made") in follows["notes"]
    if how == "published":  # the report tells these copies from the run's own
        report = store.get(f"reports/{DAY}/again.html").decode()
        assert "1 of these is a copy elsewhere of content this run made again" in report
        assert f"<title>Enhancement run again ({DAY})</title>" in report  # the days the run took
    entry = catalog.latest([copy_key])[copy_key]  # what a later decision on the copy reads: the row it follows
    assert (entry["run_id"], entry["output_sha256"]) == (follows["run_id"], made["output_sha256"])
    rebuilt = Catalog(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    rebuild(rebuilt, [r for o in store.list("ledger/") for r in from_parquet(store.get(o.key))])
    assert rebuilt.rows() == catalog.rows()


def test_a_copy_that_the_forced_run_enhances_itself_gets_no_row_following_its_masters_derivative(
        store: S3Store, catalog: Catalog, tmp_path: Path) -> None:
    key, copy_key = f"incoming/{DAY}/scan.jpg", f"incoming/{DAY}/scan-copy.jpg"
    scan = photo_crops(1, 24, "JPEG")[0]
    store.put(key, scan)
    [night] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
    store.put(copy_key, scan)  # late, on the same day
    [copy] = run_night(store, catalog, tasks.RunConfig("late", DAY, **FAST))
    assert (copy["status"], copy["output_key"]) == ("duplicate", night["output_key"])

    again = tasks.RunConfig("again", DAY, **FAST, force=True, overrides=("sharpen.amount=0.3",))
    rows = run_night(store, catalog, again)  # the copy is in the run: enhanced with its master, its own derivative
    assert sorted((r["source_key"], r["status"]) for r in rows) == [(copy_key, "ok"), (key, "ok")]
    latest, [own] = catalog.latest([copy_key])[copy_key], [r for r in rows if r["source_key"] == copy_key]
    assert (latest["status"], latest["output_key"]) == ("ok", own["output_key"])
    rebuilt = Catalog(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    rebuild(rebuilt, [r for o in store.list("ledger/") for r in from_parquet(store.get(o.key))])
    assert rebuilt.rows() == catalog.rows()


def test_releasing_a_derivative_deleted_by_hand_changes_nothing_and_says_why(store: S3Store, catalog: Catalog) -> None:
    for n, data in enumerate(photo_crops(2, 24, "JPEG")):
        store.put(f"incoming/{DAY}/scan-{n}.jpg", data)
    strict = tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",))
    kept, gone = sorted(r["output_key"] for r in run_night(store, catalog, strict))
    store.delete([gone])  # removed outside the pipeline
    with pytest.raises(ReviewError, match=f"{gone}: in the catalog but not in the bucket"):
        release(store, catalog, [kept, gone], by=BY, reason=WHY)
    assert store.list("enhanced/") == [] and store.exists(kept)  # nothing copied, nothing recorded
    assert sorted(r["output_key"] for r in awaiting(catalog)) == [kept, gone]
    [row] = reject(store, catalog, [gone], by=BY, reason="deleted by hand")  # what can be done with it
    assert row["verdict"] == "rejected" and [r["output_key"] for r in awaiting(catalog)] == [kept]


def test_releasing_a_forced_try_never_overwrites_a_derivative_retouched_by_hand(store: S3Store, catalog: Catalog) -> None:
    key = f"incoming/{DAY}/scan.jpg"
    store.put(key, photo_crops(1, 24, "JPEG")[0])
    [first] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
    store.put(first["output_key"], b"retouched by hand")
    tried = tasks.RunConfig("tried", DAY, **FAST, force=True, overrides=("sharpen.amount=0.3",),
                            gate=("min_consistency_psnr_db=99",))
    [held] = run_night(store, catalog, tried)
    [row] = release(store, catalog, [held["output_key"]], by=BY, reason=WHY)
    assert store.get(first["output_key"]) == b"retouched by hand"
    assert row["output_key"] != first["output_key"] and store.exists(row["output_key"])
    assert any("changed or put there by hand" in note for note in row["notes"])
    assert not any("replaces" in note for note in row["notes"])


def test_a_held_derivative_retouched_by_hand_is_kept_when_a_new_one_supersedes_it(store: S3Store, catalog: Catalog) -> None:
    store.put(f"incoming/{DAY}/scan.jpg", photo_crops(1, 24, "JPEG")[0])
    [old] = run_night(store, catalog, tasks.RunConfig("strict", DAY, **FAST, gate=("min_consistency_psnr_db=99",)))
    store.put(old["output_key"], b"retouched by hand")  # an archivist's fix, before deciding on it
    [new] = run_night(store, catalog, tasks.RunConfig("next", DAY, **FAST, force=True))
    assert new["verdict"] == "passed" and store.get(old["output_key"]) == b"retouched by hand"
    assert (f"supersedes {old['output_key']}, which awaited review: kept, as it was changed by hand "
            "after the pipeline put it there") in new["notes"]


def test_rejecting_a_derivative_retouched_by_hand_keeps_it_and_says_so(
        s3: S3Server, store: S3Store, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    key, copy_key = f"incoming/{DAY}/scan.jpg", "special/box/scan-copy.jpg"
    scan = photo_crops(1, 24, "JPEG")[0]
    store.put(key, scan)
    strict = ("min_consistency_psnr_db=99",)
    [held] = run_night(store, catalog, tasks.RunConfig("strict", DAY, **FAST, gate=strict))
    store.put(copy_key, scan)
    [copy] = run_night(store, catalog, tasks.RunConfig("copy", DAY, prefix="special/box/", **FAST, gate=strict))
    assert (copy["status"], copy["output_key"]) == ("duplicate", held["output_key"])
    store.put(held["output_key"], b"retouched by hand")  # an archivist's work on it, then a colleague's rejection

    for name in ("AIRFLOW_CONN_ARCHIVE_S3", "ENHANCE_S3_CONN_ID"):
        monkeypatch.setenv(name, airflow_env(tmp_path / "airflow", s3, base={})[name])
    url = catalog.engine.url.render_as_string(hide_password=False)
    assert main(["reject", "--bucket", store.bucket, "--catalog", url, "--by", BY, "--reason", WHY,
                 held["output_key"]]) == 0
    assert capsys.readouterr().out.splitlines() == [f"rejected {k} → kept, as it was changed by hand" for k in (key, copy_key)]
    assert store.get(held["output_key"]) == b"retouched by hand" and awaiting(catalog) == []
    rows = {r["source_key"]: r for o in store.list("ledger/") for r in from_parquet(store.get(o.key))
            if r["run_id"].startswith("reject-")}
    assert [(r["verdict"], r["output_key"]) for r in rows.values()] == [("rejected", None)] * 2
    kept = (f"{held['output_key']} kept: it was changed by hand after the pipeline put it there "
            "(delete it by hand if it should go)")
    assert f"rejected in review by {BY}: {WHY}; {kept}" in rows[key]["notes"] and kept in rows[copy_key]["notes"]
