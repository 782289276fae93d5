"""The nightly DAG: integrity, and real `airflow dags test` runs against a real S3 server (SeaweedFS)."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_corpus import build

from enhance_ops import codecs
from enhance_ops.airflow import tasks
from enhance_ops.catalog import Catalog
from enhance_ops.infra import seaweedfs
from enhance_ops.infra.airflow_env import airflow_bin, airflow_env as infra_env, prepare
from enhance_ops.quality.ledger import from_parquet
from enhance_ops.samples import photo_crops, write_samples
from enhance_ops.storage import S3Store

PROJECT = Path(__file__).resolve().parents[1]
DAY = "2026-11-20"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[seaweedfs.S3Server]:
    server = seaweedfs.start(tmp_path_factory.mktemp("s3"), access_key="archive", secret_key=secrets.token_urlsafe(16))
    server.client().create_bucket(Bucket="archive")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory, s3: seaweedfs.S3Server) -> dict[str, str]:
    env = infra_env(tmp_path_factory.mktemp("airflow"), s3, base=dict(os.environ))
    env["ENHANCE_TASK_RETRIES"] = "0"
    prepare(env)
    return env


@pytest.fixture(scope="module")
def store(s3: seaweedfs.S3Server) -> S3Store:
    return S3Store(s3.client(), "archive")


def test_dag_imports_cleanly_and_is_wired_as_designed(airflow_env: dict[str, str]) -> None:
    probe = """
import copy, json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag()
dag = bag.get_dag("enhance_daily")
shard = dag.get_task("enhance_shard")
def refused(**conf):
    params = copy.deepcopy(dag.params)
    try:
        for key, value in conf.items():
            params[key] = value
        params.validate()
    except Exception as exc:
        return type(exc).__name__
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
  "pool": shard.pool, "queue": shard.queue, "retries": shard.retries, "delay": shard.retry_delay.total_seconds(),
  "timetable": type(dag.timetable).__name__, "catchup": dag.catchup,
  "rules": {t: dag.get_task(t).trigger_rule for t in ("quality_gate", "publish", "write_ledger", "write_report",
                                                      "expire_old_runs", "every_shard_enhanced")},
  "settle": dag.get_task("settle_shards").trigger_rule, "last": [t.task_id for t in dag.leaves],
  "outlets": sorted(o.uri for t in dag.tasks for o in t.outlets),
  "params": sorted(dag.params.keys()), "validated": dict(dag.params.validate()),
  "refused": [refused(scale=3), refused(preset="sepia"), refused(date="20-11-2026"), refused(shard_size=0)]}))
"""
    env = {**airflow_env, "ENHANCE_TASK_RETRIES": "3", "ENHANCE_RETRY_DELAY_S": "300"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["pool"] == "gpu" and result["queue"] == "gpu"
    assert result["retries"] == 3 and result["delay"] == 300
    assert result["timetable"] == "CronDataIntervalTimetable" and result["catchup"] is False
    assert set(result["rules"].values()) == {"none_failed"}  # an empty night still gets its report
    assert result["settle"] == "all_done"  # and a night with a failed shard publishes and reports the others,
    assert result["last"] == ["every_shard_enhanced"]  # then fails
    assert result["outlets"] == ["s3://archive/enhanced", "s3://archive/ledger", "s3://archive/reports"]
    assert {"date", "end_date", "prefix", "preset", "scale", "shard_size", "shard_mb", "force", "overrides", "gate",
            "lookback_days"} <= \
        set(result["params"])
    assert result["validated"]["preset"] == "archive-photo" and result["validated"]["scale"] == 4
    assert result["refused"] == ["ParamValidationError"] * 4
    # parsing the DAG file loads nothing heavy: no torch, OpenCV, pandas, pyarrow or Great Expectations
    heavy = subprocess.run([sys.executable, "-c", "import sys, runpy, json; runpy.run_path('dags/enhance_daily.py');"
                            "print(json.dumps(sorted({'torch', 'cv2', 'pandas', 'pyarrow', 'great_expectations'}"
                            " & set(sys.modules))))"], env=env, cwd=PROJECT, capture_output=True, text=True)
    assert json.loads(heavy.stdout.strip().splitlines()[-1]) == []


OUTPUTS: list[str] = []  # everything the runs printed, scanned for credentials at the end


def _dags_test(env: dict[str, str], date: str, conf: dict, dag_id: str = "enhance_daily") -> None:
    run = subprocess.run([airflow_bin(), "dags", "test", dag_id, date, "-c", json.dumps(conf)],
                         env=env, capture_output=True, text=True, timeout=600)
    OUTPUTS.append(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "state=failed" not in run.stdout + run.stderr.replace("WARNING", "")


def _rows(store: S3Store, prefix: str) -> list[dict]:
    return [r for o in store.list(prefix) for r in from_parquet(store.get(o.key))]


def _published(store: S3Store, day: str) -> dict[str, str]:
    return {o.key: o.etag for prefix in ("enhanced/", "quarantine/") for o in store.list(f"{prefix}{day}/")}


CONF = {"preset": "fidelity", "scale": 2, "shard_size": 3}


@pytest.mark.parametrize(("scale", "override", "said"), [
    (4, 'superres.models=["span-x2"]', "models span-x2 upscale x2, but x4 was asked for"),
    (2, 'superres.bitonal_models=["span-x4"]', "superres.bitonal_models: models span-x4 upscale x4, but x2"),
])
def test_a_backfill_whose_models_cannot_make_its_scale_is_refused_by_its_first_task(
        scale: int, override: str, said: str) -> None:
    """``configure`` took it, and every shard then failed on it."""
    with pytest.raises(ValueError, match=re.escape(said)):
        tasks.validate(tasks.RunConfig("backfill", dt.date.fromisoformat(DAY), scale=scale, overrides=(override,)))


def test_nightly_run_end_to_end_then_a_rerun_changes_nothing(store: S3Store, airflow_env: dict[str, str],
                                                               tmp_path: Path) -> None:
    for path in write_samples(tmp_path / "samples", long_side=32):
        store.put(f"incoming/{DAY}/box-7/{path.name}", path.read_bytes())
    store.put(f"incoming/{DAY}/box-7/truncated.jpg", (tmp_path / "samples" / "cat_scan.jpg").read_bytes()[:300])
    store.put(f"incoming/{DAY}/box-7/notes.txt", b"not an image: never listed")
    store.put(f"incoming/{DAY}/box-7/damaged-tag.tif", build()["damaged-tag.tif"].data)
    store.put(f"incoming/{DAY}/box-7/IMG_0412.HEIC", build()["phone.heic"].data)  # a donor's phone photograph
    masters = {o.key: o.etag for o in store.list("incoming/")}

    _dags_test(airflow_env, DAY, CONF)

    published = _published(store, DAY)
    assert len(published) == 9 and all("/box-7/" in k for k in published)
    parts = [o.key for o in store.list(f"ledger/date={DAY}/")]
    assert len(parts) == 4  # 10 images in shards of 3
    rows = _rows(store, f"ledger/date={DAY}/")
    assert len(rows) == 10 and [r["error_type"] for r in rows if r["verdict"] == "failed"] == ["truncated"]
    [phone] = [r for r in rows if r["source_key"].endswith("IMG_0412.HEIC")]
    assert phone["output_key"].endswith("/box-7/IMG_0412.png") and codecs.decode(store.get(phone["output_key"])).size \
        == (128, 192)  # upright, x2
    [damaged] = [r for r in rows if r["source_key"].endswith("damaged-tag.tif")]  # noted in a real task process
    assert any(note.startswith("TIFF tag 315 (Artist) is damaged") for note in damaged["notes"])
    assert {r["output_key"] for r in rows if r["status"] == "ok"} == set(published)
    assert all(r["verdict"] in ("passed", "quarantined") for r in rows if r["status"] == "ok")
    [letter] = [r for r in rows if r["source_key"].endswith("grey_two_pages.tif")]  # both pages, in one TIFF
    assert letter["pages"] == 2 and len(codecs.pages(store.get(letter["output_key"])).frames) == 2
    report = store.list(f"reports/{DAY}/")
    assert len(report) == 1 and b"truncated.jpg" in store.get(report[0].key)
    assert {o.key: o.etag for o in store.list("incoming/")} == masters  # originals untouched
    assert len(Catalog(airflow_env["ENHANCE_CATALOG_URL"]).rows()) == 10

    # The same night again: the catalog knows every master, so nothing is enhanced or published;
    # the run leaves only its own bookkeeping and a report that says so.
    before = {o.key: o.etag for o in store.list("")}
    _dags_test(airflow_env, DAY, CONF)
    after = {o.key: o.etag for o in store.list("")}
    assert {k: v for k, v in after.items() if not k.startswith(("runs/", "reports/"))} == \
        {k: v for k, v in before.items() if not k.startswith(("runs/", "reports/"))}
    reports = store.list(f"reports/{DAY}/")
    assert len(reports) == 2
    assert any(b"No new images" in store.get(o.key) for o in reports)

    # Re-running the first run's tasks (as a retry or a cleared task would) rewrites the same
    # objects: the same derivatives, the same ledger rows, no new keys.
    run_id = rows[0]["run_id"]
    cfg = tasks.RunConfig.from_dict(json.loads(store.get(f"runs/{run_id}/shards/shard-00000.json"))["config"])
    catalog = Catalog(airflow_env["ENHANCE_CATALOG_URL"])
    before = {o.key: o.etag for o in store.list("") if not o.key.startswith("runs/")}
    shards = [tasks.enhance_shard(store, catalog, o.key) for o in store.list(f"runs/{run_id}/shards/")]
    parts = [s["part"] for s in shards]
    assert all(s["duplicates"] == 0 for s in shards)  # its own earlier processing is not a duplicate
    tasks.quality_gate(store, cfg, parts)
    tasks.publish(store, catalog, cfg, parts)
    tasks.write_ledger(store, cfg, parts)
    now = {o.key: o.etag for o in store.list("") if not o.key.startswith("runs/")}
    assert set(now) == set(before)  # no new keys; ledger parts replaced (their timings differ), not added
    assert {k: v for k, v in now.items() if not k.startswith("ledger/")} == \
        {k: v for k, v in before.items() if not k.startswith("ledger/")}  # byte-identical derivatives
    again = _rows(store, f"ledger/date={DAY}/run={run_id}/")
    assert sorted((r["source_key"], r["output_key"], r["verdict"]) for r in again) == \
        sorted((r["source_key"], r["output_key"], r["verdict"]) for r in rows)


def test_a_range_of_days_a_prefix_and_a_duplicate(store: S3Store, airflow_env: dict[str, str], tmp_path: Path) -> None:
    days = ("2026-11-21", "2026-11-22")
    for day, side in zip(days, (28, 30)):
        for path in write_samples(tmp_path / day, long_side=side)[:2]:
            store.put(f"incoming/{day}/{path.name}", path.read_bytes())
    earlier = next(o.key for o in store.list(f"incoming/{DAY}/box-7/") if o.key.endswith("page_document.png"))
    store.put(f"incoming/{days[0]}/copy-of-page.png", store.get(earlier))  # content processed on DAY already

    _dags_test(airflow_env, days[0], {**CONF, "date": days[0], "end_date": days[1]})

    for day in days:  # each day's images go to that day's folders and ledger partition
        assert len(_published(store, day)) == 2
        assert len(_rows(store, f"ledger/date={day}/")) == 2 + (day == days[0])
    duplicate = next(r for r in _rows(store, f"ledger/date={days[0]}/") if r["status"] == "duplicate")
    original = next(r for r in _rows(store, f"ledger/date={DAY}/") if r["source_key"] == earlier)
    assert duplicate["output_key"] == original["output_key"] and duplicate["verdict"] == original["verdict"]
    assert earlier in duplicate["notes"][0]
    assert not any(k.endswith("copy-of-page.png") for k in _published(store, days[0]))

    for path in write_samples(tmp_path / "special", long_side=34)[:2]:
        store.put(f"special/box-9/{path.name}", path.read_bytes())
    _dags_test(airflow_env, "2026-11-23", {**CONF, "prefix": "special/box-9/", "date": "2026-11-23"})
    assert {k.split("/", 2)[2] for k in _published(store, "2026-11-23")} == {"cat_scan.jpg", "rocket_sideways.jpg"}


def test_an_archivist_releases_and_rejects_quarantined_derivatives_through_their_dag(
        store: S3Store, airflow_env: dict[str, str]) -> None:
    for n, data in enumerate(photo_crops(2, 26, "JPEG")):
        store.put(f"special/review/scan-{n}.jpg", data)
    strict = {**CONF, "prefix": "special/review/", "date": "2026-11-24", "gate": ["min_consistency_psnr_db=99"]}
    _dags_test(airflow_env, "2026-11-24", strict)
    kept, bad = sorted(o.key for o in store.list("quarantine/2026-11-24/"))
    data = store.get(kept)

    release = {"decision": "release", "keys": [kept], "by": "A. Archivist", "reason": "checked against the print"}
    _dags_test(airflow_env, "2026-11-25", release, dag_id="review_quarantined")
    reject = {"decision": "reject", "keys": [bad], "by": "A. Archivist", "reason": "smeared faces"}
    _dags_test(airflow_env, "2026-11-26", reject, dag_id="review_quarantined")

    assert store.get("enhanced/2026-11-24/scan-0.jpg") == data and not store.exists(kept) and not store.exists(bad)
    decided = {r["run_id"].split("-")[0]: r for r in _rows(store, "ledger/date=2026-11-24/") if "-" in r["run_id"]}
    assert decided["release"]["verdict"] == "passed" and \
        "released from quarantine by A. Archivist: checked against the print" in decided["release"]["notes"]
    assert (decided["reject"]["verdict"], decided["reject"]["output_key"]) == ("rejected", None)
    # downstream DAGs scheduled on enhanced/ hear of the release only; both decisions update the ledger
    assert _asset_events(airflow_env, "review_quarantined") == {
        "2026-11-25": ["s3://archive/enhanced", "s3://archive/ledger"], "2026-11-26": ["s3://archive/ledger"]}


def _asset_events(env: dict[str, str], dag_id: str) -> dict[str, list[str]]:
    """The Asset events a DAG's runs emitted, by the run's logical date, from Airflow's metadata database."""
    query = ("SELECT r.logical_date, a.uri FROM asset_event e JOIN asset a ON a.id = e.asset_id "
             "JOIN dag_run r ON r.dag_id = e.source_dag_id AND r.run_id = e.source_run_id WHERE e.source_dag_id = ?")
    with contextlib.closing(sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")) as conn:
        found: dict[str, list[str]] = {}
        for logical_date, uri in conn.execute(query, (dag_id,)):
            found.setdefault(str(logical_date)[:10], []).append(uri)
    return {day: sorted(uris) for day, uris in found.items()}


def test_the_weekly_fixity_check_fails_its_run_on_a_derivative_changed_since_it_was_written(
        store: S3Store, airflow_env: dict[str, str]) -> None:
    published = sorted(o.key for prefix in ("enhanced/", "quarantine/") for o in store.list(prefix))
    assert len(published) >= 8  # from the runs above
    _dags_test({**airflow_env, "ENHANCE_FIXITY_PARTS": "3"}, "2026-11-29", {}, dag_id="verify_fixity")
    assert re.search(r"task_id=check.*map_index=2", OUTPUTS[-1])  # three runs of keys, read by three mapped checks
    assert not re.search(r"task_id=check.*map_index=3", OUTPUTS[-1])
    [listing, page] = sorted(o.key for o in store.list("reports/fixity/2026-11-29/"))  # .html, .json
    found = json.loads(store.get(page))
    assert found["counts"] == {"intact": len(published), "changed": 0, "missing": 0, "unrecorded": 0}
    assert "Every derivative checked is as it was written." in store.get(listing).decode()

    day = "enhanced/2026-11-24/"  # the released one, in a day of its own
    [key] = [k for k in published if k.startswith(day)]
    data = store.get(key)
    store.put(key, b"retouched by hand")
    run = subprocess.run([airflow_bin(), "dags", "test", "verify_fixity", "2026-11-30", "-c", json.dumps({"prefix": day})],
                         env=airflow_env, capture_output=True, text=True, timeout=600)
    OUTPUTS.append(run.stdout + run.stderr)
    assert "state=failed" in run.stdout + run.stderr.replace("WARNING", "")
    [listing, page] = sorted(o.key for o in store.list("reports/fixity/2026-11-30/"))
    found = json.loads(store.get(page))
    assert found["counts"] == {"intact": 0, "changed": 1, "missing": 0, "unrecorded": 0}
    assert [(c["state"], c["key"]) for c in found["not_intact"]] == [("changed", key)]
    shown = store.get(listing).decode()  # for archivists: the derivative, its master and what was found
    assert f"<td>changed</td><td>{key}</td><td>{found['not_intact'][0]['source_key']}</td>" in shown
    assert "it lacks the pipeline&#x27;s mark: replaced or edited by hand" in shown
    assert f"checked 1 derivative under {day}: 0 intact, 1 changed" in run.stdout + run.stderr
    store.put(key, data)  # as it was, for the tests after this one


@pytest.mark.parametrize(("dag_id", "first", "second", "conf"), [
    ("enhance_daily", "configure", "discover", CONF),
    ("verify_fixity", "plan", "check", {}),
    ("review_quarantined", "decide", None, {"keys": ["quarantine/2026-11-21/x.jpg"], "by": "A. Archivist",
                                            "reason": "fine"}),
])
def test_a_run_pointed_at_a_bucket_that_does_not_exist_fails_at_its_first_task_saying_so(
        store: S3Store, airflow_env: dict[str, str], dag_id: str, first: str, second: str | None, conf: dict) -> None:
    before = sorted(o.key for o in store.list(""))
    run = subprocess.run([airflow_bin(), "dags", "test", dag_id, "2026-11-21", "-c",
                          json.dumps({**conf, "bucket": "archvie"})],
                         env=airflow_env, capture_output=True, text=True, timeout=600)
    said = run.stdout + run.stderr
    OUTPUTS.append(said)
    endpoint = json.loads(airflow_env["AIRFLOW_CONN_ARCHIVE_S3"])["extra"]["endpoint_url"]
    assert f"BucketError: s3://archvie at {endpoint}: no such bucket" in said
    assert f"[DAG TEST] end task task_id={first}" in said and re.search(r"DagRun Finished: .*state=failed", said)
    assert second is None or f"task_id={second}" not in said  # no task after it started
    assert sorted(o.key for o in store.list("")) == before  # nothing written, anywhere


def test_catalog_rebuilt_from_the_ledger_equals_the_live_catalog(store: S3Store, airflow_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    live = Catalog(airflow_env["ENHANCE_CATALOG_URL"]).rows()
    assert len(live) >= 8  # filled by the runs above
    url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    done = subprocess.run([sys.executable, "-m", "enhance_ops", "catalog-rebuild", "--bucket", "archive", "--catalog", url],
                          env=airflow_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert Catalog(url).rows() == live
    [answer] = done.stdout.splitlines()  # Airflow's log lines go to stderr
    assert answer.startswith(f"catalog {url}: {len(live)} entries from ")
    assert airflow_env["AIRFLOW_CONN_ARCHIVE_S3"] and json.loads(airflow_env["AIRFLOW_CONN_ARCHIVE_S3"])["password"] \
        not in done.stdout + done.stderr


def test_no_credential_in_any_log_ledger_report_or_object(store: S3Store, airflow_env: dict[str, str]) -> None:
    secret = json.loads(airflow_env["AIRFLOW_CONN_ARCHIVE_S3"])["password"].encode()
    assert any("shard 0: ok incoming/" in out for out in OUTPUTS)  # `dags test` prints the task logs
    assert all(secret not in out.encode() for out in OUTPUTS)
    files = [p for p in Path(airflow_env["AIRFLOW_HOME"]).rglob("*") if p.is_file()]  # config, metadata DB, catalog
    assert all(secret not in p.read_bytes() for p in files)
    objects = store.list("")
    assert any(o.key.startswith("ledger/") for o in objects) and any(o.key.startswith("reports/") for o in objects)
    assert all(secret not in store.get(o.key) for o in objects)  # ledger, reports, manifests, checkpoints
