"""The Parquet quality ledger: one row per image per run, the permanent record of what was done.

Layout: ``<root>/date=<YYYY-MM-DD>/run=<run_id>/part-<shard>.parquet``. Each shard writes its
own part in one atomic replace, so re-running a shard replaces its rows instead of adding
more. The schema is versioned (``SCHEMA_VERSION`` in the file metadata); docs/quality.md
describes every column. pyarrow and pandas read it as a hive-partitioned dataset (as would
DuckDB's ``read_parquet(..., hive_partitioning=true)``).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import resource
import socket
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .. import __version__
from ..errors import EnhanceError
from .measures import MEASURES

SCHEMA_VERSION = 11  # 2: worker column; status 'duplicate'. 3: verdict 'rejected'. 4: output_sha256. 5: clipping_added.
# 6: pages, pages_json. 7: pages_complete. 8: master_damage. 9: output_bytes. 10: input_bits_per_sample.
# 11: lpips_precision
VERDICTS = ("passed", "quarantined", "failed", "rejected")  # rejected: by a person in review (review.reject)

SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("logical_date", pa.date32()),
        ("shard", pa.int32()),
        ("source_key", pa.string()),
        ("source_etag", pa.string()),
        ("source_sha256", pa.string()),
        ("output_key", pa.string()),
        ("output_sha256", pa.string()),
        ("output_bytes", pa.int64()),
        ("status", pa.string()),
        ("input_format", pa.string()),
        ("input_width", pa.int32()),
        ("input_height", pa.int32()),
        ("input_bit_depth", pa.int8()),
        ("input_bits_per_sample", pa.int8()),
        ("input_channels", pa.int8()),
        ("output_format", pa.string()),
        ("output_width", pa.int32()),
        ("output_height", pa.int32()),
        ("output_bit_depth", pa.int8()),
        ("pages", pa.int32()),
        ("pages_json", pa.string()),
        ("pages_complete", pa.bool_()),
        ("master_damage", pa.string()),
        ("scale", pa.float32()),
        ("preset", pa.string()),
        ("parameters_json", pa.string()),
        ("stages_json", pa.string()),
        ("models", pa.list_(pa.string())),
        ("weights_sha256", pa.map_(pa.string(), pa.string())),
        ("code_version", pa.string()),
        ("device", pa.string()),
        ("worker", pa.string()),
        ("precision", pa.string()),
        ("lpips_precision", pa.string()),
        ("stage_seconds", pa.map_(pa.string(), pa.float64())),
        ("decode_s", pa.float64()),
        ("encode_s", pa.float64()),
        ("total_s", pa.float64()),
        ("peak_rss_bytes", pa.int64()),
        *[(name, pa.float64()) for name in MEASURES],
        ("verdict", pa.string()),
        ("failed_expectations", pa.list_(pa.string())),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("notes", pa.list_(pa.string())),
        ("processed_at", pa.timestamp("us", tz="UTC")),
    ],
    metadata={"schema_version": str(SCHEMA_VERSION), "producer": f"archive-enhance {__version__}"},
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def worker_name() -> str:
    """Who processed an image: ``$ENHANCE_WORKER_NAME`` (set per Celery worker) or the host name."""
    return os.environ.get("ENHANCE_WORKER_NAME") or socket.gethostname()


def row_from_record(
    record: dict[str, Any],
    *,
    run_id: str,
    logical_date: dt.date,
    shard: int,
    source_key: str,
    output_key: str,
    source_etag: str | None = None,
    total_s: float | None = None,
) -> dict[str, Any]:
    """A ledger row for an enhanced image, from the record ``Enhancer.enhance`` returns.

    ``peak_rss_bytes`` is the process's memory high-water mark once the image is done. A
    multi-page master's sizes are its first page's, its measures the worst over its pages
    (``Enhancer``); ``pages_json`` holds each page's.
    """
    stages = record.get("stages", [])
    metrics = record.get("metrics", {})
    (in_w, in_h), (out_w, out_h) = record["input_size"], record["output_size"]
    return {
        "run_id": run_id, "logical_date": logical_date, "shard": shard,
        "source_key": source_key, "source_etag": source_etag, "source_sha256": record["input_sha256"],
        "output_key": output_key, "output_sha256": record["output_sha256"], "output_bytes": record["output_bytes"],
        "status": "ok",
        "input_format": record["input_format"], "input_width": in_w, "input_height": in_h,
        "input_bit_depth": record["bit_depth"], "input_bits_per_sample": record["bits_per_sample"],
        "input_channels": record["channels"],
        "output_format": record["output_format"], "output_width": out_w, "output_height": out_h,
        "output_bit_depth": record["bit_depth"], "scale": out_w / in_w,
        "pages": len(record.get("pages", [])) or 1,
        "pages_json": json.dumps(record["pages"]) if "pages" in record else None,
        "pages_complete": record["pages_complete"],
        "master_damage": record["master_damage"],
        "preset": record["preset"],
        "parameters_json": parameters_json(record["settings"]),
        "stages_json": json.dumps(stages),
        "models": list(record["models"]),
        "weights_sha256": list(record["weights_sha256"].items()),
        "code_version": __version__, "device": record["device"], "worker": worker_name(), "precision": record["precision"],
        "lpips_precision": record["lpips_precision"],
        "stage_seconds": [(s["stage"], float(s["seconds"])) for s in stages],
        "decode_s": record.get("decode_s"), "encode_s": record.get("encode_s"), "total_s": total_s,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux reports KiB
        **{name: _finite_or_none(metrics.get(name)) for name in MEASURES},
        "verdict": None, "failed_expectations": [],
        "error_type": None, "error_message": None,
        "notes": list(record.get("notes", [])) + ([record["cache"]] if "cache" in record else []),
        "processed_at": _now(),
    }


def reduced_input_to(stages: list[dict[str, Any]]) -> list[int] | None:
    """The size super-resolution first reduced the input to, where dynamic scaling capped the
    output (a record's stages, or a row's ``stages_json`` read back): the gate's expected size."""
    return _detail(stages, "superres", "reduced_input_to")


def pixel_stretch(stages: list[dict[str, Any]]) -> list[float] | None:
    """How far the chain stretched the output's axes to square pixels (``square_pixels``), where
    it did: the gate's expected size again."""
    return _detail(stages, "square_pixels", "stretch")


def _detail(stages: list[dict[str, Any]], stage: str, key: str) -> Any:
    return next((s.get("details", {}).get(key) for s in stages if s["stage"] == stage), None)


def parameters_json(settings: dict[str, Any]) -> str:
    """The resolved chain settings as the ledger keeps them: one spelling for the same settings."""
    return json.dumps(settings, sort_keys=True)


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or value != value else float(value)


def _not_enhanced_row(**values: Any) -> dict[str, Any]:
    """A row with every column empty but the bookkeeping, for images the chain did not enhance."""
    row: dict[str, Any] = {field.name: None for field in SCHEMA}
    row.update(code_version=__version__, failed_expectations=[], models=[], weights_sha256=[], stage_seconds=[],
               notes=[], worker=worker_name(), processed_at=_now())
    row.update(values)
    return row


def failed_row(
    error: BaseException,
    *,
    run_id: str,
    logical_date: dt.date,
    shard: int,
    source_key: str,
    source_sha256: str | None,
    source_etag: str | None = None,
    total_s: float | None = None,
) -> dict[str, Any]:
    """A ledger row for an image that could not be enhanced: what went wrong, in words and as a code."""
    code = error.code if isinstance(error, EnhanceError) else "internal_error"
    return _not_enhanced_row(
        run_id=run_id, logical_date=logical_date, shard=shard, source_key=source_key, source_etag=source_etag,
        source_sha256=source_sha256, status="failed", total_s=total_s, verdict="failed", error_type=code,
        error_message=f"{type(error).__name__}: {error}",
    )


def duplicate_row(
    earlier: dict[str, Any], *, run_id: str, logical_date: dt.date, shard: int, source_key: str, source_etag: str | None
) -> dict[str, Any]:
    """A ledger row for a master whose content an earlier run already processed, under another
    key or (uploaded again unchanged, with a new ETag) under its own.

    It is not enhanced again: the row points at the earlier derivative and carries its verdict.
    """
    if earlier["source_key"] == source_key:
        note = f"uploaded again unchanged (a new ETag, the same bytes): processed already by run {earlier['run_id']}"
    else:
        note = f"identical content already processed as {earlier['source_key']} by run {earlier['run_id']}"
    return _not_enhanced_row(
        run_id=run_id, logical_date=logical_date, shard=shard, source_key=source_key, source_etag=source_etag,
        source_sha256=earlier["source_sha256"], output_key=earlier["output_key"],
        output_sha256=earlier.get("output_sha256"), output_bytes=earlier.get("output_bytes"), status="duplicate",
        verdict=earlier["verdict"], notes=[note],
    )


def part_key(logical_date: dt.date, run_id: str, shard: int) -> str:
    """The part's key relative to the ledger root (the same layout in a bucket or a folder)."""
    return f"date={logical_date.isoformat()}/run={run_id}/part-{shard:05d}.parquet"


def part_path(root: Path, logical_date: dt.date, run_id: str, shard: int) -> Path:
    return root / part_key(logical_date, run_id, shard)


def to_parquet(rows: list[dict[str, Any]]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), sink)
    return sink.getvalue().to_pybytes()


def from_parquet(data: bytes, *, source_keys: Collection[str] | None = None) -> list[dict[str, Any]]:
    """The part's rows; only those of these masters where ``source_keys`` is given."""
    wanted = None if source_keys is None else ds.field("source_key").isin(pa.array(sorted(source_keys), pa.string()))
    return pq.read_table(pa.BufferReader(data), filters=wanted).to_pylist()


def add_part(rows: list[dict[str, Any]], root: Path, logical_date: dt.date, run_id: str) -> Path:
    """A local run's rows as its run's next part in a ledger folder, whole, and never in place
    of a part already there: a run id given again (a backfill done folder by folder, two runs
    started in the same second) adds its rows beside the earlier ones. Each part had been
    part 0, and the second run's rows had replaced the first's."""
    shard = 0
    while True:
        path = part_path(root, logical_date, run_id, shard)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(to_parquet([{**row, "shard": shard} for row in rows]))
            try:
                os.link(tmp, path)  # refused where another run took this part meanwhile
                return path
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        shard += 1


PARTITIONS = pa.schema([("date", pa.string()), ("run", pa.string())])


def read_ledger(root: Path) -> pa.Table:
    """Every part under ``root``, with the ``date`` and ``run`` partition columns added; parts
    of earlier schema versions read with this one's columns, null where they had none (else
    the first part found would decide the columns of all)."""
    partitioning = ds.partitioning(PARTITIONS, flavor="hive")
    dataset = ds.dataset(root, schema=pa.unify_schemas([SCHEMA, PARTITIONS]), format="parquet",
                         partitioning=partitioning, exclude_invalid_files=True)
    return dataset.to_table()
