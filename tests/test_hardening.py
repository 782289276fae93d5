"""Hostile files, storage faults, killed workers and limits, on the real S3 server (SeaweedFS).

The task functions are called as the DAG calls them (tests/test_dag.py runs the DAG itself);
the outage of the S3 server is staged under a real `airflow dags test` run with task retries.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html
import io
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import piexif
import pytest
import tifffile
from botocore.exceptions import ClientError
from conftest import gate_night, run_night
from faults import FaultyProxy
from hostile_corpus import LENS, build, extended_xmp
from native_crash import PRELUDE
from PIL import Image

from enhance_ops import codecs, storage
from enhance_ops.airflow import tasks
from enhance_ops.catalog import Catalog
from enhance_ops.errors import UnsafeKeyError
from enhance_ops.infra import seaweedfs
from enhance_ops.infra.airflow_env import airflow_bin, airflow_env, prepare
from enhance_ops.quality.ledger import from_parquet
from enhance_ops.review import reject
from enhance_ops.samples import photo_crops, write_samples
from enhance_ops.storage import ObjectInfo, S3Store, download, safe_key

DAY = dt.date(2026, 11, 20)
FAST = {"preset": "fidelity", "scale": 2}


def published_and_held(store: S3Store, catalog: Catalog) -> tuple[dict, dict]:
    """The rows of a master published by run ``night`` (on DAY) and of another held back for
    review by run ``strict`` (the day after)."""
    later = DAY + dt.timedelta(days=1)
    cat, dog = photo_crops(2, 24, "JPEG")
    store.put(f"incoming/{DAY}/cat.jpg", cat)
    [night] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
    store.put(f"incoming/{later}/dog.jpg", dog)
    [held] = run_night(store, catalog, tasks.RunConfig("strict", later, **FAST, gate=("min_consistency_psnr_db=99",)))
    return night, held


def _through(proxy: FaultyProxy, s3: seaweedfs.S3Server, bucket: str) -> S3Store:
    """The bucket through the fault proxy, with the pipeline's client settings."""
    import boto3

    from enhance_ops.storage import client_config

    client = boto3.client("s3", endpoint_url=proxy.endpoint, region_name="us-east-1", config=client_config(),
                          aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key)
    return S3Store(client, bucket)


def _published(store: S3Store) -> dict[str, str]:
    return {o.key: o.etag for prefix in ("enhanced/", "quarantine/") for o in store.list(prefix)}


def test_every_hostile_file_gets_a_derivative_or_a_specific_error_and_the_shard_completes(
        store: S3Store, catalog: Catalog) -> None:
    corpus = build()
    for name, case in corpus.items():
        store.put(f"incoming/{DAY}/odd/{name}", case.data)
    cfg = tasks.RunConfig("hostile", DAY, shard_size=100, max_pixels=4_000_000, **FAST)

    rows = {r["source_key"].rsplit("/", 1)[1]: r for r in run_night(store, catalog, cfg)}

    assert set(rows) == set(corpus)  # one shard, every file in it accounted for
    published = _published(store)
    for name, case in corpus.items():
        row = rows[name]
        if case.expected != "ok":
            assert (row["status"], row["error_type"]) == ("failed", case.expected), (name, row["error_message"])
            assert row["output_key"] is None
            continue
        assert row["status"] == "ok", (name, row["error_type"], row["error_message"])
        assert row["output_key"] in published
        out = codecs.decode(store.get(row["output_key"]))  # a whole, decodable derivative
        assert (out.pixels.shape[1], out.pixels.shape[0]) == (2 * case.upright[0], 2 * case.upright[1]), name
        if case.exif_make:
            assert out.metadata.exif["0th"][271] == case.exif_make.encode(), name
        if case.icc:
            assert out.metadata.icc_profile == case.icc, name
        for word in case.notes:
            assert any(word in note for note in row["notes"]), (name, row["notes"])
        assert row["pages"] == len(codecs.pages(store.get(row["output_key"])).frames) == case.pages, name
        left_out = "every page of the master is in the derivative" in row["failed_expectations"]
        assert (row["pages_complete"], left_out) == (not case.incomplete, case.incomplete), name
        damaged = "master_damage is null" in row["failed_expectations"]
        assert (row["master_damage"] is not None, damaged) == (case.damaged, case.damaged), name
        assert row["verdict"] == "quarantined" or not (case.incomplete or case.damaged), name
    assert codecs.decode(store.get(rows["palette-transparent.png"]["output_key"])).alpha is not None
    assert codecs.decode(store.get(rows["grey16.tif"]["output_key"])).bit_depth == 16
    assert rows["scan-12bit.pgm"]["output_key"].endswith(".png")  # a 12-bit PGM, as a 16-bit PNG
    assert codecs.decode(store.get(rows["scan-12bit.pgm"]["output_key"])).bit_depth == 16
    assert rows["scan-12bit.jpg"]["output_key"].endswith(".png")  # a JPEG holds 8 bits
    for name, bits in {"scan-12bit.pgm": 12, "scan-12bit.tif": 12, "scan-12bit.jp2": 12, "scan-12bit.jpg": 12,
                       "grey16.tif": 16, "bilevel.tif": 1, "tiny-7x7.jpg": 8, "scan-16bit.pgm": 16, "cmyk16.tif": 16,
                       "lab16.tif": 16, "layered-16bit.psd": 16}.items():  # what the master was made with
        depth = 16 if bits > 8 else 8
        assert (rows[name]["input_bits_per_sample"], rows[name]["input_bit_depth"]) == (bits, depth), name
    assert rows["multipage-cut-page.tif"]["error_message"].startswith("TruncatedImageError: page 2 of 3: ")
    extended = codecs.decode(store.get(rows["extended-xmp.jpg"]["output_key"])).metadata.xmp_extension
    assert extended == extended_xmp(np.zeros((16, 24, 3), np.uint8))[1]  # the master's, whatever its pixels
    with tifffile.TiffFile(io.BytesIO(store.get(rows["map.tif"]["output_key"]))) as tif:
        assert tif.pages[0].tags[33550].value == (0.25, 0.25, 0.0)  # half the size at x2
    assert rows["stereo-pair.mpo"]["output_key"].endswith("/stereo-pair.jpg")  # its primary image, a JPEG
    assert rows["recompressed.jxl"]["output_key"].endswith("/recompressed.jpg")  # the JPEG it recompressed
    assert codecs.pages(store.get(rows["stereo-pair.mpo"]["output_key"])).notes == ()  # a plain JPEG
    lens = codecs.decode(store.get(rows["lens-in-utf8.tif"]["output_key"])).metadata.exif["Exif"]
    assert lens[piexif.ExifIFD.LensModel] == LENS  # a sub-directory's text, byte for byte
    upright = codecs.decode(store.get(rows["orientation-1.jpg"]["output_key"])).pixels
    for n in range(2, 9):  # every orientation comes out the same way up
        turned = codecs.decode(store.get(rows[f"orientation-{n}.jpg"]["output_key"]))
        assert np.abs(turned.pixels - upright).mean() < 0.05, n
        assert turned.metadata.orientation == 1, n  # the pixels are upright, so the tag says so
    for name, case in corpus.items():
        assert store.get(f"incoming/{DAY}/odd/{name}") == case.data  # masters untouched


def test_a_multi_page_masters_before_and_after_shows_its_weakest_page(store: S3Store, catalog: Catalog) -> None:
    """A reviewer of a letter held back for its third page must see that page, not the first."""
    import tifffile

    photo = np.asarray(Image.open(io.BytesIO(build()["multipage.tif"].data)))  # 24 x 16
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:  # a blank first page, a thumbnail, the photo
        tif.write(np.zeros_like(photo), photometric="rgb", metadata=None)
        tif.write(photo[::4, ::4], photometric="rgb", subfiletype=1, metadata=None)
        tif.write(photo, photometric="rgb", metadata=None)
    store.put(f"incoming/{DAY}/letter.tif", buf.getvalue())
    cfg = tasks.RunConfig("letter", DAY, **FAST)
    [row] = run_night(store, catalog, cfg)
    assert row["pages"] == 2
    for weakest, brightness in ((2, lambda mean: mean > 0.2), (1, lambda mean: mean < 0.01)):
        pages = json.loads(row["pages_json"])
        for page in pages:
            page["metrics"]["composite_score"] = 0.1 if page["page"] == weakest else 0.9
        previews, _ = tasks._previews(store, cfg, [{**row, "pages_json": json.dumps(pages)}], [0])
        assert brightness(float(np.mean(previews[0].before))), weakest
        assert abs(float(np.mean(previews[0].before)) - float(np.mean(previews[0].after))) < 0.05


def test_keys_that_could_escape_fail_alone_and_never_leave_their_prefix(store: S3Store, catalog: Catalog,
                                                                      tmp_path: Path) -> None:
    photo = write_samples(tmp_path / "s", long_side=20)[0].read_bytes()
    deep = "/".join(["a" * 240] * 4)  # a 987-byte key: fine as a master, too long under runs/<run id>/staging/
    for name in ("fine.jpg", "ctrl\x01char.jpg", f"{deep}.jpg"):  # uploaded by another client, unchecked
        store.client.put_object(Bucket=store.bucket, Key=f"incoming/{DAY}/{name}", Body=photo)
    cfg = tasks.RunConfig(tasks.clean_run_id("manual__2026-11-21T01:02:03.456789+00:00"), DAY, **FAST)

    rows = {r["source_key"]: r for r in run_night(store, catalog, cfg)}

    assert rows[f"incoming/{DAY}/fine.jpg"]["status"] == "ok"
    for name in ("ctrl\x01char.jpg", f"{deep}.jpg"):
        assert rows[f"incoming/{DAY}/{name}"]["error_type"] == "unsafe_key"
    assert [k.split("/", 2)[2] for k in _published(store)] == ["fine.jpg"]  # only the good one, in its day's folder

    class Listing:  # S3 servers refuse '..' keys, so the mirror's own guard is shown with a listing that has one
        def list(self, prefix: str) -> list[ObjectInfo]:
            return [ObjectInfo("reports/../../outside.html", "e", 1)]

        def get(self, key: str) -> bytes:
            return b"x"

    with pytest.raises(UnsafeKeyError):
        download(Listing(), "reports/", tmp_path / "mirror")  # type: ignore[arg-type]
    assert not (tmp_path / "outside.html").exists()


@pytest.mark.parametrize("key", [
    "incoming/../../etc/passwd", "incoming/./x.jpg", "..", "/etc/passwd", "\\server\\share.jpg",
    "incoming/a\\..\\b.jpg", "incoming/line\nbreak.jpg", "incoming/nul\x00.jpg", "incoming/" + "n" * 1020, "",
])
def test_keys_that_could_escape_are_refused_before_any_use(key: str) -> None:
    with pytest.raises(UnsafeKeyError):
        safe_key(key)
    assert safe_key("incoming/2026-11-20/box 7/scan (1).tif") == "incoming/2026-11-20/box 7/scan (1).tif"


def test_run_limits_refuse_big_files_unread_and_defer_extra_images(store: S3Store, catalog: Catalog,
                                                                   tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "s", long_side=20)
    for path in samples[:5]:
        store.put(f"incoming/{DAY}/{path.name}", path.read_bytes())
    big = max(samples[:5], key=lambda p: p.stat().st_size)
    cfg = tasks.RunConfig("limits-1", DAY, max_images=3, max_file_bytes=big.stat().st_size - 1, **FAST)

    rows = run_night(store, catalog, cfg)

    keys = sorted(o.key for o in store.list(f"incoming/{DAY}/"))
    assert [r["source_key"] for r in rows] == keys[:3]  # the first three by key order
    too_big = [r for r in rows if r["error_type"] == "file_too_large"]
    assert len(too_big) == (f"incoming/{DAY}/{big.name}" in keys[:3])
    assert all(r["source_sha256"] is None for r in too_big)  # refused from the listing's size, never downloaded
    report = store.get(f"reports/{DAY}/limits-1.html").decode()
    assert "2 more images were found than this run takes" in report and keys[3] in report

    # The next nights look back (the DAG's default). With the same limits, one takes the
    # deferred images and files them under their own day, and only names the big file, which
    # would be refused again; with higher limits, the next takes it.
    night = DAY + dt.timedelta(days=1)
    later = run_night(store, catalog, tasks.RunConfig("limits-2", night, lookback_days=3, max_file_bytes=big.stat().st_size - 1,
                                                      **FAST))
    assert sorted(r["source_key"] for r in later) == sorted(set(keys[3:]) - {f"incoming/{DAY}/{big.name}"})
    assert {r["logical_date"] for r in later} == {DAY} and all(r["status"] == "ok" for r in later)
    report = store.get(f"reports/{night}/limits-2.html").decode()
    assert "1 image of earlier days is over this run&#x27;s max_file_bytes" in report and big.name in report
    last = run_night(store, catalog, tasks.RunConfig("limits-3", night, lookback_days=3, **FAST))
    assert [(r["source_key"], r["status"], r["logical_date"]) for r in last] == [(f"incoming/{DAY}/{big.name}", "ok", DAY)]
    forced = tasks.RunConfig("again", DAY, lookback_days=3, force=True)
    assert [day for _, day in forced.sources()] == [DAY]  # a forced run redoes its own day only


def test_copies_next_to_each_other_in_a_shard_are_enhanced_once(store: S3Store, catalog: Catalog,
                                                               tmp_path: Path) -> None:
    """The next images are fetched and decoded while one is in the chain, so a copy can arrive
    before its twin is finished: it must still get the twin's result, not a second run."""
    first, other = write_samples(tmp_path, long_side=30)[:2]
    for name, path in (("a.png", first), ("b.png", first), ("c.png", other), ("d.png", first), ("e.png", other)):
        store.put(f"incoming/{DAY}/{name}", path.read_bytes())
    night = run_night(store, catalog, tasks.RunConfig("copies", DAY, **FAST))
    rows = {r["source_key"].rsplit("/", 1)[1]: r for r in night}
    copies = [name for name, row in rows.items() if "identical content seen earlier in this run" in row["notes"]]
    assert copies == ["b.png", "d.png", "e.png"] and all(rows[n]["status"] == "ok" for n in rows)
    assert store.get(rows["b.png"]["output_key"]) == store.get(rows["a.png"]["output_key"])


def test_copies_in_a_night_of_small_shards_share_one_and_are_enhanced_once(store: S3Store, catalog: Catalog) -> None:
    crops = photo_crops(3, 32, "PNG")
    for name, data in (("box-1/a.png", crops[0]), ("box-1/b.png", crops[1]), ("box-2/c.png", crops[2]),
                       ("box-3/copy-of-a.png", crops[0])):
        store.put(f"incoming/{DAY}/{name}", data)
    rows = run_night(store, catalog, tasks.RunConfig("small-shards", DAY, **FAST, shard_size=1))
    by_name = {r["source_key"].split("/", 2)[2]: r for r in rows}
    assert by_name["box-3/copy-of-a.png"]["shard"] == by_name["box-1/a.png"]["shard"] == 0  # the same ETag
    assert len({r["shard"] for r in rows}) == 3  # the others one a shard, as asked
    assert "identical content seen earlier in this run" in by_name["box-3/copy-of-a.png"]["notes"]


def test_a_night_of_large_scans_spreads_over_more_shards_by_their_bytes(store: S3Store, catalog: Catalog) -> None:
    """Shards were cut by count alone: sixteen large scans in one GPU task held it for the
    night while tasks of small ones were long done."""
    small, large = photo_crops(6, 32, "BMP"), photo_crops(1, 200, "BMP")[0]  # uncompressed: sizes known
    for n, data in enumerate(small[:3] + [large] + small[3:]):
        store.put(f"incoming/{DAY}/scan-{n}.bmp", data)
    assert {len(data) for data in small} == {54 + 32 * 32 * 3} and len(large) > 3 * len(small[0])
    budget = 2 * len(small[0]) + 1  # two small masters a shard, at most
    cfg = tasks.RunConfig("by-bytes", DAY, **FAST, shard_bytes=budget)
    manifests = tasks.plan_shards(store, cfg, tasks.discover(store, catalog, cfg)["listing"])
    shards = [[o["key"].rsplit("/", 1)[1] for o in json.loads(store.get(key))["objects"]] for key in manifests]
    assert shards == [["scan-0.bmp", "scan-1.bmp"], ["scan-2.bmp"], ["scan-3.bmp"], ["scan-4.bmp", "scan-5.bmp"],
                      ["scan-6.bmp"]]  # the large one alone; no shard past the budget otherwise
    assert tasks.RunConfig.from_dict({k: v for k, v in cfg.as_dict().items() if k != "shard_bytes"}).shard_bytes \
        == 2 * 1024**3  # a shard written before the limit existed reads with the default


def test_copies_on_two_days_of_one_run_are_enhanced_once_and_filed_under_their_days(store: S3Store,
                                                                                    catalog: Catalog) -> None:
    crops = photo_crops(2, 28, "PNG")
    later = DAY + dt.timedelta(days=1)
    for key, data in ((f"incoming/{DAY}/a.png", crops[0]), (f"incoming/{DAY}/b.png", crops[1]),
                      (f"incoming/{later}/a-again.png", crops[0])):
        store.put(key, data)
    rows = run_night(store, catalog, tasks.RunConfig("range", DAY, end_date=later, **FAST, shard_size=1))
    by_name = {r["source_key"].rsplit("/", 1)[1]: r for r in rows}
    again = by_name["a-again.png"]
    assert again["shard"] == by_name["a.png"]["shard"] and again["logical_date"] == later  # one shard, its own day
    assert "identical content seen earlier in this run" in again["notes"] and again["status"] == "ok"
    assert again["output_key"].split("/", 2)[1:] == [str(later), "a-again.png"]  # published under its own day
    assert store.get(again["output_key"]) == store.get(by_name["a.png"]["output_key"])
    filed = {(o.key.split("/")[1], str(r["logical_date"]), r["source_key"].rsplit("/", 1)[1])
             for o in store.list("ledger/") for r in from_parquet(store.get(o.key))}
    assert filed == {(f"date={DAY}", str(DAY), "a.png"), (f"date={DAY}", str(DAY), "b.png"),
                     (f"date={later}", str(later), "a-again.png")}  # each row in its own day's partition


def test_masters_whose_derivatives_would_share_a_name_each_keep_their_own(store: S3Store, catalog: Catalog) -> None:
    sides = {"x.bmp": 24, "x.jpeg": 26, "x.jpg": 28, "x.png": 30}  # x.bmp and x.png both give a PNG
    for name, side in sides.items():
        fmt = {".bmp": "BMP", ".jpeg": "JPEG", ".jpg": "JPEG", ".png": "PNG"}[Path(name).suffix]
        store.put(f"incoming/{DAY}/box/{name}", photo_crops(1, side, fmt)[0])
    rows = run_night(store, catalog, tasks.RunConfig("names", DAY, **FAST, shard_size=1))
    assert {r["shard"] for r in rows} == {0}  # masters that could share a name are named by one shard
    by_name = {Path(r["source_key"]).name: r for r in rows}
    names = {n: Path(r["output_key"]).name for n, r in by_name.items()}
    assert names["x.jpeg"] == "x.jpeg" and names["x.jpg"] == "x.jpg" and len(set(names.values())) == 4
    tagged = "x.bmp"  # x.png keeps its own name, though x.bmp comes first in key order
    assert names["x.png"] == "x.png" and re.fullmatch(r"x~[0-9a-f]{8}\.png", names[tagged])
    note = next(n for n in by_name[tagged]["notes"] if f"x.png is the derivative of incoming/{DAY}/box/" in n)
    report = store.get(next(o.key for o in store.list("reports/"))).decode()
    assert names[tagged] in report and html.escape(note) in report  # the archivists see the name and why
    for name, row in by_name.items():  # each derivative is its own master's, enlarged x2
        assert codecs.decode(store.get(row["output_key"])).size == (2 * sides[name],) * 2


def test_a_backfill_never_overwrites_another_masters_derivative(store: S3Store, catalog: Catalog) -> None:
    store.put(f"incoming/{DAY}/cat.jpg", photo_crops(1, 28, "JPEG")[0])
    store.put("special/box-9/cat.jpg", photo_crops(1, 32, "JPEG")[0])  # another master, the same name
    night = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))[0]
    kept = store.get(night["output_key"])
    backfill = run_night(store, catalog, tasks.RunConfig("backfill", DAY, prefix="special/box-9/", **FAST))[0]
    assert backfill["verdict"] == night["verdict"]  # the same folder: the names would have met
    assert backfill["output_key"] != night["output_key"] and store.get(night["output_key"]) == kept
    assert f"cat.jpg is the derivative of incoming/{DAY}/cat.jpg" in backfill["notes"][-1]
    assert codecs.decode(store.get(backfill["output_key"])).size == (64, 64)
    again = run_night(store, catalog, tasks.RunConfig("again", DAY, force=True, **FAST))[0]
    assert again["output_key"] == night["output_key"]  # a master's own derivative is replaced in place
    assert f"replaces the earlier derivative at {night['output_key']}, made by run night" in again["notes"]
    assert not any("replaces" in note for note in night["notes"] + backfill["notes"])


@pytest.mark.parametrize("how", ["retouched", "placed"])
def test_an_object_changed_or_placed_by_hand_at_a_derivatives_key_is_never_overwritten(
        store: S3Store, catalog: Catalog, how: str) -> None:
    key, plain = f"incoming/{DAY}/cat.jpg", f"enhanced/{DAY}/cat.jpg"
    store.put(key, photo_crops(1, 24, "JPEG")[0])
    if how == "retouched":  # an archivist's own fix, uploaded over the night's derivative
        [night] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
        assert night["output_key"] == plain
        again = tasks.RunConfig("again", DAY, force=True, **FAST, overrides=("sharpen.amount=0.3",))
    else:  # put there before the master's first night
        again = tasks.RunConfig("night", DAY, **FAST)
    store.put(plain, b"made by hand")
    [row] = run_night(store, catalog, again)
    assert store.get(plain) == b"made by hand"
    tag = hashlib.sha256(key.encode()).hexdigest()[:8]
    assert row["output_key"] == f"enhanced/{DAY}/cat~{tag}.jpg" and store.exists(row["output_key"])
    assert (f"named cat~{tag}.jpg: cat.jpg there was changed or put there by hand, not by the pipeline for "
            f"{key}: kept as it is") in row["notes"]
    assert not any("replaces" in note for note in row["notes"])
    assert catalog.latest([key])[key]["output_key"] == row["output_key"]
    [third] = run_night(store, catalog, dataclasses.replace(again, run_id="third", force=True))
    assert third["output_key"] == row["output_key"]  # its derivative now, replaced in place
    assert f"replaces the earlier derivative at {row['output_key']}, made by run {again.run_id}" in third["notes"]


def test_a_derivative_that_lost_its_mark_is_known_by_its_bytes(store: S3Store, catalog: Catalog) -> None:
    """As after the bucket was copied without its metadata, or a file uploaded again unchanged."""
    night, held = published_and_held(store, catalog)
    for derivative in (night["output_key"], held["output_key"]):
        store.put(derivative, store.get(derivative))  # the same bytes, without the mark
        assert tasks.MARK not in (store.metadata(derivative) or {})
    remade = tasks.RunConfig("again", DAY, force=True, **FAST, overrides=("sharpen.amount=0.3",))
    [again] = run_night(store, catalog, remade)
    assert again["output_key"] == night["output_key"]  # replaced in place, not put beside it
    assert f"replaces the earlier derivative at {night['output_key']}, made by run night" in again["notes"]
    [rejected] = reject(store, catalog, [held["output_key"]], by="A. Archivist", reason="smeared")
    assert not store.exists(held["output_key"]) and f"{held['output_key']} deleted" in " ".join(rejected["notes"])


def test_a_shard_that_fails_past_its_retries_holds_back_its_own_images_and_no_others(tmp_path: Path) -> None:
    """One shard's storage failed past its retries (here a real proxy in front of SeaweedFS
    answers every write to that shard's attempt record with 503 SlowDown): the tasks after the
    shards ran only when none had failed, so the other shards' derivatives were never
    published, nor their rows written, nor the night reported. Now those go on, the report
    names the failed shard's images, the run's last task fails it, and the next run of the
    day, with the fault gone, enhances just those images."""
    server = seaweedfs.start(tmp_path / "s3", access_key="archive", secret_key=secrets.token_urlsafe(16))
    proxy = FaultyProxy(server.endpoint)
    try:
        server.client().create_bucket(Bucket="archive")
        store = S3Store(server.client(), "archive")
        for path in write_samples(tmp_path / "samples", long_side=32):
            store.put(f"incoming/{DAY}/{path.name}", path.read_bytes())
        env = airflow_env(tmp_path / "airflow", dataclasses.replace(server, endpoint=proxy.endpoint),
                          base=dict(os.environ))
        env.update({"ENHANCE_TASK_RETRIES": "1", "ENHANCE_RETRY_DELAY_S": "1", "ENHANCE_S3_MAX_ATTEMPTS": "2"})
        prepare(env)
        proxy.inject("PUT", "slowdown", times=10_000, path="attempts/shard-00001")

        def night() -> str:
            run = subprocess.run([airflow_bin(), "dags", "test", "enhance_daily", DAY.isoformat(), "-c",
                                  json.dumps({**FAST, "shard_size": 3})], env=env, capture_output=True, text=True,
                                 timeout=600)
            return run.stdout + run.stderr

        said = night()
        assert re.search(r"DagRun Finished: .*state=failed", said), said[-4000:]
        assert ("1 of 3 shards failed past their retries (shard-00001.json): their images were not enhanced; the "
                "other shards' were gated, published and reported" in said)
        [manifest] = [o.key for o in store.list("runs/") if o.key.endswith("shards/shard-00001.json")]
        held_back = sorted(obj["key"] for obj in json.loads(store.get(manifest))["objects"])
        rows = [r for o in store.list("ledger/") for r in from_parquet(store.get(o.key))]
        masters = sorted(o.key for o in store.list("incoming/"))
        assert len(held_back) == 3 and sorted(r["source_key"] for r in rows) == sorted(set(masters) - set(held_back))
        assert sorted(_published(store)) == sorted(r["output_key"] for r in rows if r["output_key"])
        [report] = [o.key for o in store.list("reports/")]
        shown = html.unescape(store.get(report).decode())
        assert (f"1 of this run's 3 shards failed past their retries (a storage or worker fault, in their task "
                f"logs), so 3 images were not enhanced and are in neither this report nor the ledger: "
                f"{', '.join(held_back)}." in shown)

        proxy.faults.clear()  # the fault is gone: the day run again takes what the failed shard held
        first = {o.key for o in store.list("ledger/")}
        said = night()
        assert re.search(r"DagRun Finished: .*state=success", said), said[-4000:]
        again = [r for o in store.list("ledger/") if o.key not in first for r in from_parquet(store.get(o.key))]
        assert sorted(r["source_key"] for r in again) == held_back
    finally:
        proxy.close()
        server.stop()


def test_two_runs_publishing_one_name_at_the_same_moment_each_keep_their_derivative(
        s3: seaweedfs.S3Server, store: S3Store, catalog: Catalog) -> None:
    store.put(f"incoming/{DAY}/cat.jpg", photo_crops(1, 28, "JPEG")[0])
    store.put("special/box-9/cat.jpg", photo_crops(1, 32, "JPEG")[0])  # another master, the same name
    night, backfill = tasks.RunConfig("night", DAY, **FAST), tasks.RunConfig("backfill", DAY, prefix="special/box-9/", **FAST)
    night_parts, _ = gate_night(store, catalog, night)
    backfill_parts, _ = gate_night(store, catalog, backfill)
    proxy = FaultyProxy(s3.endpoint)
    try:
        proxy.inject("PUT", "stall", seconds=3)  # the night's copy to its derivative's key is held up ...
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(tasks.publish, _through(proxy, s3, store.bucket), catalog, night, night_parts)
            deadline = time.monotonic() + 60
            while not proxy.attempts["PUT"]:
                assert time.monotonic() < deadline and not slow.done(), "the night's publish never copied"
                time.sleep(0.05)
            tasks.publish(store, catalog, backfill, backfill_parts)  # ... while the backfill publishes
            slow.result()
    finally:
        proxy.close()
    rows = {r["run_id"]: r for p in night_parts + backfill_parts for r in from_parquet(store.get(p))}
    assert rows["night"]["verdict"] == rows["backfill"]["verdict"]  # the same folder: the names met
    assert rows["night"]["output_key"] != rows["backfill"]["output_key"]
    for run, side in (("night", 56), ("backfill", 64)):  # each derivative is its own master's, enlarged x2
        assert codecs.decode(store.get(rows[run]["output_key"])).size == (side, side)
    assert f"cat.jpg is the derivative of incoming/{DAY}/cat.jpg" in rows["backfill"]["notes"][-1]


def test_a_copy_is_reused_only_from_a_run_with_the_same_settings(store: S3Store, catalog: Catalog) -> None:
    scan = photo_crops(1, 24, "JPEG")[0]
    for key in (f"incoming/{DAY}/cat.jpg", "special/x4/cat.jpg", "special/x2/cat.jpg"):
        store.put(key, scan)  # one scan under three keys
    [night] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
    [x4] = run_night(store, catalog, tasks.RunConfig("x4", DAY, prefix="special/x4/", preset="fidelity", scale=4))
    assert x4["status"] == "ok" and codecs.decode(store.get(x4["output_key"])).size == (96, 96)  # what it asked for
    [x2] = run_night(store, catalog, tasks.RunConfig("x2", DAY, prefix="special/x2/", **FAST))
    assert (x2["status"], x2["output_key"]) == ("duplicate", night["output_key"])  # the night's, not the x4 one


def test_a_master_put_back_to_its_earlier_scan_is_enhanced_again_and_copies_not_pointed_at_what_it_replaced(
        store: S3Store, catalog: Catalog) -> None:
    key = f"incoming/{DAY}/cat.jpg"
    first, rescan = photo_crops(2, 24, "JPEG")
    store.put(key, first)
    [night] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
    store.put(key, rescan)  # re-scanned and replaced: its derivative's key now holds the new scan's
    [second] = run_night(store, catalog, tasks.RunConfig("second", DAY, **FAST))
    assert second["output_key"] == night["output_key"]
    derivative = store.get(second["output_key"])
    store.put(key, first)  # put back: the first bytes, the first ETag
    [back] = run_night(store, catalog, tasks.RunConfig("back", DAY, **FAST))
    assert (back["status"], back["source_sha256"], back["output_key"]) == ("ok", night["source_sha256"], night["output_key"])
    assert store.get(back["output_key"]) != derivative  # its derivative is its own content's again
    store.put("special/box/cat-rescan.jpg", rescan)  # a copy of the re-scan, whose derivative is gone
    [copy] = run_night(store, catalog, tasks.RunConfig("copy", DAY, prefix="special/box/", **FAST))
    assert copy["status"] == "ok" and copy["output_key"] != second["output_key"]


def test_a_copy_of_content_whose_derivative_was_deleted_by_hand_is_enhanced_not_pointed_at_nothing(
        store: S3Store, catalog: Catalog) -> None:
    scan = photo_crops(1, 24, "JPEG")[0]
    store.put(f"incoming/{DAY}/cat.jpg", scan)
    [night] = run_night(store, catalog, tasks.RunConfig("night", DAY, **FAST))
    store.delete([night["output_key"]])  # removed outside the pipeline
    store.put("special/box/cat-copy.jpg", scan)
    [copy] = run_night(store, catalog, tasks.RunConfig("copy", DAY, prefix="special/box/", **FAST))
    assert copy["status"] == "ok" and store.exists(copy["output_key"])
    assert (f"{night['output_key']}, the derivative of the same content made by run night, is not in the bucket "
            "any more: enhanced again") in copy["notes"]
    store.put("special/box-2/cat-copy.jpg", scan)  # the next copy reuses the copy's derivative
    [second] = run_night(store, catalog, tasks.RunConfig("second", DAY, prefix="special/box-2/", **FAST))
    assert (second["status"], second["output_key"]) == ("duplicate", copy["output_key"])


def test_the_report_is_written_when_masters_changed_or_went_after_their_shard(store: S3Store, catalog: Catalog) -> None:
    names = ("kept.jpg", "deleted.jpg", "rescanned.jpg")
    for name, data in zip(names, photo_crops(3, 24, "JPEG")):
        store.put(f"incoming/{DAY}/{name}", data)
    cfg = tasks.RunConfig("night", DAY, **FAST)
    parts, summary = gate_night(store, catalog, cfg)
    tasks.publish(store, catalog, cfg, parts)
    tasks.write_ledger(store, cfg, parts)
    store.delete([f"incoming/{DAY}/deleted.jpg"])  # while the run was finishing
    store.put(f"incoming/{DAY}/rescanned.jpg", photo_crops(4, 24, "JPEG")[3])
    report = store.get(tasks.write_report(store, catalog, cfg, parts, summary)).decode()
    assert report.count('class="viewer"') == 1  # the kept one's before/after, not another scan's
    assert ("No before/after for 2 images changed or gone since the run read them: "
            f"incoming/{DAY}/deleted.jpg (master gone), incoming/{DAY}/rescanned.jpg (master replaced)") in report


def test_a_derivative_too_large_to_read_whole_is_named_in_the_report_not_previewed(
        store: S3Store, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report read each featured derivative whole to cut its crop: a document of many
    large pages, gigabytes, in the report task's memory. Past PREVIEW_MAX_BYTES (lowered here
    to sit between the two derivatives' sizes) it is named in a remark instead."""
    store.put(f"incoming/{DAY}/letter.jpg", photo_crops(1, 24, "JPEG")[0])
    store.put(f"incoming/{DAY}/register.jpg", photo_crops(1, 96, "JPEG")[0])
    cfg = tasks.RunConfig("night", DAY, **FAST)
    parts, summary = gate_night(store, catalog, cfg)
    tasks.publish(store, catalog, cfg, parts)
    tasks.write_ledger(store, cfg, parts)
    sizes = {o.key.rsplit("/", 1)[1]: (o.key, o.size) for o in store.list("") if o.key.startswith(("enhanced/", "quarantine/"))}
    (_, small), (register, large) = sizes["letter.jpg"], sizes["register.jpg"]
    monkeypatch.setattr(tasks, "PREVIEW_MAX_BYTES", (small + large) // 2)
    report = store.get(tasks.write_report(store, catalog, cfg, parts, summary)).decode()
    assert report.count('class="viewer"') == 1  # the letter's before/after
    assert (f"No before/after for 1 derivative over {tasks.PREVIEW_MAX_BYTES / 1e9:.1f} GB, which the report does not "
            f"read whole to show a crop (open them from the bucket): {register} ({large / 1e9:.1f} GB)") in report


def test_a_backfill_prefix_is_a_folder_and_never_the_pipelines_own_outputs(store: S3Store, catalog: Catalog) -> None:
    crops = photo_crops(2, 24, "JPEG")
    store.put("special/box-1/a.jpg", crops[0])
    store.put("special/box-10/b.jpg", crops[1])  # "special/box-1" as a string prefix would take it too
    rows = run_night(store, catalog, tasks.RunConfig("box-1", DAY, prefix="special/box-1", **FAST))
    assert [(r["source_key"], r["status"]) for r in rows] == [("special/box-1/a.jpg", "ok")]
    for outputs in ("enhanced/2026-11-20/", "quarantine", "runs/box-1/staging/", "ledger/"):
        with pytest.raises(ValueError, match="own outputs"):  # derivatives are never taken for masters
            tasks.RunConfig("again", DAY, prefix=outputs)


def test_earlier_runs_bookkeeping_expires_and_nothing_else_goes_with_it(store: S3Store, catalog: Catalog) -> None:
    crops = photo_crops(2, 24, "JPEG")
    store.put(f"incoming/{DAY}/a.jpg", crops[0])
    run_night(store, catalog, tasks.RunConfig("first", DAY, **FAST))
    store.put(f"incoming/{DAY}/b.jpg", crops[1])
    second = tasks.RunConfig("second", DAY, **FAST)
    run_night(store, catalog, second)
    store.put("reports/fixity/2026-11-21/unfinished.json", b"{}")  # a fixity check's, named like the run below
    # masters, derivatives, ledger and reports
    others = {o.key: o.etag for o in store.list("") if not o.key.startswith("runs/")}
    assert tasks.expire_runs(store, second, keep_days=14) == {"runs": 0, "objects": 0}  # both runs are fresh
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=15)
    staged = [o.key for o in store.list("runs/first/") if "/staging/" in o.key]
    store.put("runs/unfinished/parts/part-00000.parquet", b"rows of a run that never reached the ledger")
    assert staged and tasks.expire_runs(store, second, keep_days=0, now=later)["runs"] == 0  # 0: keep all
    assert tasks.expire_runs(store, second, keep_days=14, now=later)["runs"] == 1
    assert store.list("runs/first/") == [] and store.list("runs/second/")  # this run keeps its own
    assert store.list("runs/unfinished/")  # no report: its parts may be the only record of what it did
    assert {o.key: o.etag for o in store.list("") if not o.key.startswith("runs/")} == others


def test_large_masters_are_decoded_only_when_the_chain_reaches_them(store: S3Store, catalog: Catalog,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Over ``DECODE_AHEAD_PIXELS`` a master waits encoded (not as float pixels) in the prefetch
    queue and is decoded in the chain's own thread; the results are the same."""
    samples = write_samples(tmp_path / "s", long_side=24)
    for path in samples:
        store.put(f"incoming/{DAY}/{path.name}", path.read_bytes())
    png = next(p for p in samples if p.suffix == ".png").read_bytes()
    store.put(f"incoming/{DAY}/cut.png", png[: len(png) // 2])  # its header reads; its pixels do not

    def shard_rows(run_id: str) -> list[dict]:
        cfg = tasks.RunConfig(run_id, DAY, **FAST)
        manifest = tasks.plan_shards(store, cfg, tasks.discover(store, catalog, cfg)["listing"])[0]
        return sorted(from_parquet(store.get(tasks.enhance_shard(store, catalog, manifest)["part"])),
                      key=lambda r: r["source_key"])

    decoded_in: list[str] = []
    start = tasks._ShardStep._start
    monkeypatch.setattr(tasks._ShardStep, "_start",
                        lambda self, item, data: decoded_in.append(threading.current_thread().name) or start(self, item, data))
    ahead = shard_rows("decode-ahead")
    assert decoded_in and all(name.startswith("fetch") for name in decoded_in)
    decoded_in.clear()
    monkeypatch.setattr(tasks, "DECODE_AHEAD_PIXELS", 0)
    waiting = shard_rows("decode-late")
    assert decoded_in and all(name == threading.main_thread().name for name in decoded_in)
    assert [(r["source_key"], r["status"], r["error_type"]) for r in waiting] == \
        [(r["source_key"], r["status"], r["error_type"]) for r in ahead]
    assert {r["error_type"] for r in ahead} == {None, "truncated"}
    for late, early in zip(waiting, ahead):
        assert late["consistency_psnr_db"] == pytest.approx(early["consistency_psnr_db"], nan_ok=True)


def test_a_worker_killed_mid_shard_resumes_and_completes_once(s3: seaweedfs.S3Server, store: S3Store,
                                                             catalog: Catalog, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    for side in (40, 44):
        for path in write_samples(tmp_path / f"s{side}", long_side=side):
            store.put(f"incoming/{DAY}/{side}/{path.name}", path.read_bytes())
    cfg = tasks.RunConfig("killed", DAY, shard_size=100, preset="archive-photo", scale=4)
    manifest = tasks.plan_shards(store, cfg, tasks.discover(store, catalog, cfg)["listing"])[0]
    worker = f"""
import boto3
from enhance_ops.airflow import tasks
from enhance_ops.catalog import Catalog
from enhance_ops.storage import S3Store, client_config
client = boto3.client("s3", endpoint_url={s3.endpoint!r}, region_name="us-east-1", config=client_config())
tasks.enhance_shard(S3Store(client, {store.bucket!r}), Catalog({str(catalog.engine.url)!r}), {manifest!r})
"""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    process = subprocess.Popen([sys.executable, "-c", worker], env=env)
    done = "runs/killed/done/shard-00000/"
    deadline = time.monotonic() + 300
    while len(store.list(done)) < 3:
        assert process.poll() is None and time.monotonic() < deadline, "the worker ended before it could be killed"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = len(store.list(done))
    assert finished_before < 14 and not store.exists(tasks.part_key(cfg, 0))

    with caplog.at_level(logging.INFO):
        summary = tasks.enhance_shard(store, catalog, manifest)  # the task's retry

    assert f"resuming, {finished_before} of 14 images already done" in caplog.text
    rows = from_parquet(store.get(summary["part"]))
    assert len(rows) == 14 and len({r["source_key"] for r in rows}) == 14
    assert all(r["status"] == "ok" for r in rows)
    staged = [o.key for o in store.list("runs/killed/staging/")]
    assert sorted(staged) == sorted(r["output_key"] for r in rows)  # one derivative each, none left half-written
    for key in staged:
        codecs.decode(store.get(key))


_CRASHING_WORKER = PRELUDE + """
import boto3
from enhance_ops.airflow import tasks
from enhance_ops.catalog import Catalog
from enhance_ops.storage import S3Store, client_config
client = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", config=client_config())
tasks.enhance_shard(S3Store(client, sys.argv[2]), Catalog(sys.argv[3]), sys.argv[4], stall_s=float(sys.argv[5]) or None)
"""


def test_an_image_that_kills_the_worker_fails_alone_and_the_shard_completes(s3: seaweedfs.S3Server, store: S3Store,
                                                                             catalog: Catalog, tmp_path: Path) -> None:
    """A decoder's native crash (imagecodecs' libavif aborted on an AVIF sequence) killed the
    worker process at the same image on every retry, until Airflow's retries were spent and
    the shard's other images were never enhanced. The retry after a death takes the images
    that were in flight one at a time; the one the worker then dies holding alone fails,
    with its own error, on the next retry, and the shard completes."""
    paths = write_samples(tmp_path / "s", long_side=40)
    for path in paths:
        store.put(f"incoming/{DAY}/{path.name}", path.read_bytes())
    store.put(f"incoming/{DAY}/{paths[2].stem}-crashes.png", paths[2].read_bytes() + b"SEGV")
    cfg = tasks.RunConfig("crashing", DAY, shard_size=100, **FAST)
    manifest = tasks.plan_shards(store, cfg, tasks.discover(store, catalog, cfg)["listing"])[0]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    codes = [subprocess.run([sys.executable, "-c", _CRASHING_WORKER, s3.endpoint, store.bucket, str(catalog.engine.url),
                             manifest, "0"], env=env, timeout=300).returncode for _ in range(3)]
    assert codes == [-signal.SIGSEGV, -signal.SIGSEGV, 0]  # the task, then Airflow's first two retries
    rows = from_parquet(store.get(tasks.part_key(cfg, 0)))
    assert len(rows) == len(paths) + 1
    failed = [r for r in rows if r["status"] == "failed"]
    assert [(r["source_key"], r["error_type"]) for r in failed] == [(f"incoming/{DAY}/{paths[2].stem}-crashes.png",
                                                                     "worker_died")]
    assert failed[0]["error_message"].startswith("WorkerDiedError: the worker process died while this image was in "
                                                 "hand, twice, the second time with no other image")
    assert sorted(o.key for o in store.list("runs/crashing/staging/")) == sorted(r["output_key"] for r in rows
                                                                                 if r["status"] == "ok")


@pytest.mark.parametrize(("marker", "stall_s", "end", "said", "why"), [
    ("HANG", "15", -signal.SIGKILL, "shard 0: no progress for 1",
     r"made no progress for 1\d s while this image was in hand, twice, the second time with no other image \(a "
     r"decoder or the chain stuck on it\), and was killed by its watchdog"),
    ("HOLD", "5", 1, "Timeout (0:00:10)!", r"died while this image was in hand, twice, the second time with no other"),
])
def test_an_image_a_decoder_hangs_on_fails_alone_and_the_shard_completes(
        s3: seaweedfs.S3Server, store: S3Store, catalog: Catalog, tmp_path: Path, marker: str, stall_s: str, end: int,
        said: str, why: str) -> None:
    """A decoder caught in a loop by a file would hold its shard's task for ever (Airflow's
    execution_timeout raises in a main thread that native code never gives back), and every
    later night behind it. The shard's watchdog kills the worker when nothing has moved for
    ``stall_s`` (faulthandler's timer at twice that, where the hung code holds the interpreter
    and no Python thread runs); the retry takes the images that were in flight one at a time,
    and the one the worker is then stuck on alone fails, with its own error, on the next."""
    paths = write_samples(tmp_path / "s", long_side=40)
    for path in paths:
        store.put(f"incoming/{DAY}/{path.name}", path.read_bytes())
    store.put(f"incoming/{DAY}/{paths[2].stem}-hangs.png", paths[2].read_bytes() + marker.encode())
    cfg = tasks.RunConfig(f"hanging-{marker}", DAY, shard_size=100, **FAST)
    manifest = tasks.plan_shards(store, cfg, tasks.discover(store, catalog, cfg)["listing"])[0]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    runs = [subprocess.run([sys.executable, "-c", _CRASHING_WORKER, s3.endpoint, store.bucket, str(catalog.engine.url),
                            manifest, stall_s], env=env, capture_output=True, text=True, timeout=300) for _ in range(3)]
    assert [run.returncode for run in runs] == [end, end, 0], runs[-1].stderr[-3000:]
    assert said in runs[0].stderr and " in crashing\n" in runs[0].stderr  # every thread's stack: where it was stuck
    rows = from_parquet(store.get(tasks.part_key(cfg, 0)))
    assert len(rows) == len(paths) + 1
    failed = [r for r in rows if r["status"] == "failed"]
    assert [(r["source_key"], r["error_type"]) for r in failed] == [(f"incoming/{DAY}/{paths[2].stem}-hangs.png",
                                                                     "worker_died")]
    said_why = failed[0]["error_message"]
    assert re.match(f"WorkerDiedError: the worker process {why}", said_why), said_why


def test_a_death_just_after_the_image_held_alone_was_done_blames_nothing_and_retakes_the_next_alone(
        store: S3Store, catalog: Catalog, caplog: pytest.LogCaptureFixture) -> None:
    """The process died after the image it held alone was checkpointed, before it took the
    next: that image is done, and the next, which may have done it, is taken alone again."""
    for n, data in enumerate(photo_crops(3, 24, "JPEG")):
        store.put(f"incoming/{DAY}/scan-{n}.jpg", data)
    cfg = tasks.RunConfig("died-after", DAY, **FAST)
    [manifest] = tasks.plan_shards(store, cfg, tasks.discover(store, catalog, cfg)["listing"])
    tasks.enhance_shard(store, catalog, manifest)
    store.delete([f"runs/died-after/done/shard-00000/{n:06d}.parquet" for n in (1, 2)])  # it died before these
    store.put("runs/died-after/attempts/shard-00000.json", json.dumps({"running": True, "holding": 0}).encode())
    with caplog.at_level(logging.INFO):
        tasks.enhance_shard(store, catalog, manifest)
    assert "the 2 images it may have held are taken one at a time" in caplog.text
    assert [r["status"] for r in from_parquet(store.get(tasks.part_key(cfg, 0)))] == ["ok"] * 3


def test_an_object_past_what_one_request_takes_is_uploaded_and_copied_in_parts(store: S3Store,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS S3 takes at most 5 GiB in one PUT or server-side copy, and a derivative can be more
    (a document of colour pages enlarged x4): one PUT would be refused (EntityTooLarge), a
    storage fault, which fails the shard on every retry. Such an object now goes up and is
    copied in parts. The limit is lowered here to 5 MiB, S3's smallest part, so that a 12 MiB
    object takes that path on the real server (SeaweedFS has no 5 GiB limit to hit)."""
    monkeypatch.setattr(storage, "SINGLE_REQUEST_BYTES", 5 * 2**20)
    monkeypatch.setattr(storage, "PART_BYTES", 5 * 2**20)
    data = os.urandom(12 * 2**20)

    def etag(key: str) -> str:
        return store.client.head_object(Bucket=store.bucket, Key=key)["ETag"].strip('"')

    store.put("staging/2026-12-03/register.tif", data)
    assert etag("staging/2026-12-03/register.tif").endswith("-3")  # a multipart upload of three parts
    store.copy("staging/2026-12-03/register.tif", "enhanced/2026-12-03/register.tif", {"source": "incoming/register.tif"})
    assert etag("enhanced/2026-12-03/register.tif").endswith("-3")  # copied part by part on the server
    assert store.metadata("enhanced/2026-12-03/register.tif") == {"source": "incoming/register.tif"}
    assert store.get("enhanced/2026-12-03/register.tif") == data
    assert store.sha256("enhanced/2026-12-03/register.tif") == hashlib.sha256(data).hexdigest()
    store.put("staging/2026-12-03/letter.tif", data[:5 * 2**20])
    assert "-" not in etag("staging/2026-12-03/letter.tif")  # within the limit: one PUT, as before


def test_a_copy_whose_size_the_ledger_gives_is_one_request_without_asking_the_server_first(store: S3Store) -> None:
    """Publishing asked the server each derivative's size (a HEAD) before copying it, to choose
    between one CopyObject and a copy in parts; the ledger row now says the size."""
    calls: list[str] = []
    store.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    store.put("staging/2026-12-03/letter.tif", b"derivative bytes")
    calls.clear()
    store.copy("staging/2026-12-03/letter.tif", "enhanced/2026-12-03/letter.tif", {"source": "incoming/letter.tif"},
               size=len(b"derivative bytes"))
    assert calls == ["CopyObject"]
    store.copy("staging/2026-12-03/letter.tif", "quarantine/2026-12-03/letter.tif")  # size unknown: asked first
    assert calls[1:] == ["HeadObject", "CopyObject"]
    assert store.metadata("enhanced/2026-12-03/letter.tif") == {"source": "incoming/letter.tif"}
    assert store.get("enhanced/2026-12-03/letter.tif") == b"derivative bytes"


def test_throttling_and_stalled_replies_are_retried_with_back_off(s3: seaweedfs.S3Server, store: S3Store,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = FaultyProxy(s3.endpoint)
    try:
        def through_proxy() -> S3Store:  # a new client: it reads the settings from the environment
            return _through(proxy, s3, store.bucket)

        monkeypatch.setenv("ENHANCE_S3_MAX_ATTEMPTS", "5")
        monkeypatch.setenv("ENHANCE_S3_READ_TIMEOUT_S", "1")
        faulty = through_proxy()
        store.put("k/photo.bin", b"scan bytes")
        proxy.inject("GET", "slowdown", times=3)
        assert faulty.get("k/photo.bin") == b"scan bytes"
        assert proxy.attempts["GET"] == 4  # three throttled replies, then the object

        proxy.inject("PUT", "stall", seconds=3)  # longer than the 1 s read timeout
        faulty.put("k/derivative.bin", b"enhanced bytes")
        assert proxy.attempts["PUT"] == 2 and store.get("k/derivative.bin") == b"enhanced bytes"

        monkeypatch.setenv("ENHANCE_S3_MAX_ATTEMPTS", "3")
        proxy.inject("GET", "slowdown", times=5)
        before = proxy.attempts["GET"]
        with pytest.raises(ClientError, match="SlowDown"):  # past the budget the task fails, for Airflow to retry
            through_proxy().get("k/photo.bin")
        assert proxy.attempts["GET"] - before == 3
    finally:
        proxy.close()


def test_an_images_total_s_is_its_own_time_not_its_wait_behind_a_stalled_upload(
        s3: seaweedfs.S3Server, store: S3Store, catalog: Catalog) -> None:
    for n, data in enumerate(photo_crops(3, 24, "JPEG")):
        store.put(f"incoming/{DAY}/scan-{n}.jpg", data)
    cfg = tasks.RunConfig("stalled", DAY, **FAST)
    [manifest] = tasks.plan_shards(store, cfg, tasks.discover(store, catalog, cfg)["listing"])
    proxy = FaultyProxy(s3.endpoint)
    try:
        proxy.inject("PUT", "stall", seconds=2.5, path="/staging/")  # the first derivative's upload to staging
        shard = tasks.enhance_shard(_through(proxy, s3, store.bucket), catalog, manifest)
    finally:
        proxy.close()
    first, *others = from_parquet(store.get(shard["part"]))
    assert shard["seconds"] > 2.5 and first["total_s"] > 2.5
    # the others were enhanced while it uploaded, and their uploads queued behind it: not their time
    assert [r["status"] for r in others] == ["ok", "ok"] and all(r["total_s"] < 1.5 for r in others), others


def test_s3_outage_mid_shard_is_survived_by_the_task_retry(tmp_path: Path) -> None:
    server = seaweedfs.start(tmp_path / "s3", access_key="archive", secret_key=secrets.token_urlsafe(16))
    try:
        server.client().create_bucket(Bucket="archive")
        store = S3Store(server.client(), "archive")
        for side in (40, 44):
            for path in write_samples(tmp_path / f"s{side}", long_side=side):
                store.put(f"incoming/{DAY}/{side}/{path.name}", path.read_bytes())
        masters = {o.key: o.etag for o in store.list("incoming/")}
        env = airflow_env(tmp_path / "airflow", server, base=dict(os.environ))
        env.update({"ENHANCE_TASK_RETRIES": "2", "ENHANCE_RETRY_DELAY_S": "8", "ENHANCE_S3_MAX_ATTEMPTS": "2"})
        prepare(env)
        conf = {"preset": "archive-photo", "scale": 4, "shard_size": 100}
        run = subprocess.Popen([airflow_bin(), "dags", "test", "enhance_daily", DAY.isoformat(), "-c", json.dumps(conf)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output: list[str] = []
        reader = threading.Thread(target=lambda: output.extend(run.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        deadline = time.monotonic() + 300
        while not [o for o in store.list("runs/") if "/done/" in o.key][2:]:
            assert run.poll() is None and time.monotonic() < deadline, "".join(output)[-3000:]
            time.sleep(0.2)
        server.kill()  # mid-shard: the next get or put fails, past the botocore budget
        time.sleep(6)
        server.launch()
        assert run.wait(timeout=600) == 0, "".join(output)[-4000:]
        reader.join(timeout=10)
        log = "".join(output)

        assert "resuming" in log  # the retry picked up after the last finished image
        rows = [r for o in store.list("ledger/") for r in from_parquet(store.get(o.key))]
        assert len(rows) == 14 and len({r["source_key"] for r in rows}) == 14
        assert all(r["status"] == "ok" for r in rows)
        assert sorted(_published(store)) == sorted(r["output_key"] for r in rows)  # nothing lost, nothing twice
        for key in _published(store):
            Image.open(io.BytesIO(store.get(key))).load()  # whole objects only
        assert {o.key: o.etag for o in store.list("incoming/")} == masters
    finally:
        server.stop()
