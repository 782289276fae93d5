"""The quality gate: a Great Expectations suite over a run's per-image ledger rows.

Each image gets a verdict: ``passed``, ``quarantined`` (enhanced, but it broke at least one
expectation: a person should look before it is published) or ``failed`` (it could not be
enhanced at all; the ledger row says why). The gate only labels: it never deletes anything.
Every page of a multi-page master is held to the suite, and the expectations a page broke
name it: one bad page holds the whole document for review, as does a derivative that lacks
pages or frames its master holds, or one made from a master whose pixel data the decoder
found damaged.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import pandas as pd

from ..chain.pixel_aspect import SQUARE, stretched_size
from .ledger import pixel_stretch, reduced_input_to

# Expectations over these must hold for every enhanced image (no NaN allowed).
REQUIRED_METRICS = ("consistency_psnr_db", "consistency_ssim", "consistency_lpips", "artefact_score")


@dataclass(frozen=True)
class Thresholds:
    """Per-run limits; every field can be overridden (``min_consistency_psnr_db=28``)."""

    min_consistency_psnr_db: float = 30.0
    min_consistency_ssim: float = 0.9
    max_consistency_lpips: float = 0.5
    max_artefact_score: float = 0.05
    max_clipping_added: float = 0.1

    @classmethod
    def with_overrides(cls, items: list[str] | tuple[str, ...] = ()) -> Thresholds:
        known = {f.name for f in fields(cls)}
        changes: dict[str, float] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or key not in known:
                raise ValueError(f"gate setting {item!r}: use NAME=VALUE with NAME one of {', '.join(sorted(known))}")
            try:
                changes[key] = float(value)
            except ValueError:
                changes[key] = math.nan
            if not math.isfinite(changes[key]):  # NaN would hold no image to the limit
                raise ValueError(f"gate setting {item!r}: {value!r} is not a number")
        return replace(cls(), **changes)


def _expected_size(
    input_size: tuple[int, int], reduced_to: list[int] | None, scale: int, stretch: list[float] | None
) -> tuple[int, int]:
    """Input × requested scale, or the reduced input × scale where dynamic scaling capped it;
    then stretched to square pixels where the master's were not."""
    width, height = reduced_to or input_size
    return stretched_size(width * scale, height * scale, tuple(stretch) if stretch else SQUARE)


def _pages(row: dict[str, Any]) -> list[dict[str, Any]]:
    """What the suite checks of each page: a multi-page master's ``pages_json``, else the row."""
    if row.get("pages_json"):
        return json.loads(row["pages_json"])
    stages = json.loads(row["stages_json"])
    return [{"page": 1, "input_size": (row["input_width"], row["input_height"]),
             "reduced_input_to": reduced_input_to(stages), "pixel_stretch": pixel_stretch(stages),
             "output_size": (row["output_width"], row["output_height"]), "metrics": row,
             "master_damage": row.get("master_damage")}]


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    records = []
    for i, row in enumerate(rows):
        if row["status"] != "ok":
            continue
        scale = json.loads(row["parameters_json"])["superres"]["scale"]
        for page in _pages(row):
            metrics = page["metrics"]
            expected_w, expected_h = _expected_size(page["input_size"], page["reduced_input_to"], scale,
                                                    page.get("pixel_stretch"))  # absent before square pixels
            records.append({
                "image_id": f"{i}/{page['page']}",
                **{name: (float("nan") if metrics.get(name) is None else metrics[name]) for name in REQUIRED_METRICS},
                "clipping_added": metrics.get("clipping_added"),
                "output_width": page["output_size"][0], "expected_width": expected_w,
                "output_height": page["output_size"][1], "expected_height": expected_h,
                "pages_complete": row.get("pages_complete") is not False,  # null in parts before schema 7
                "master_damage": page.get("master_damage"),  # absent from parts before schema 8
            })
    return pd.DataFrame.from_records(records)


def _suite(t: Thresholds) -> list[tuple[str, Any]]:
    """(label shown to archivists, expectation) pairs; the labels go into the ledger."""
    import great_expectations as gx

    e = gx.expectations
    suite = [(f"{name} is not NaN", e.ExpectColumnValuesToNotBeNull(column=name)) for name in REQUIRED_METRICS]
    return suite + [
        (f"consistency_psnr_db >= {t.min_consistency_psnr_db:g}",
         e.ExpectColumnValuesToBeBetween(column="consistency_psnr_db", min_value=t.min_consistency_psnr_db)),
        (f"consistency_ssim >= {t.min_consistency_ssim:g}",
         e.ExpectColumnValuesToBeBetween(column="consistency_ssim", min_value=t.min_consistency_ssim)),
        (f"consistency_lpips <= {t.max_consistency_lpips:g}",
         e.ExpectColumnValuesToBeBetween(column="consistency_lpips", max_value=t.max_consistency_lpips)),
        (f"artefact_score <= {t.max_artefact_score:g}",
         e.ExpectColumnValuesToBeBetween(column="artefact_score", max_value=t.max_artefact_score)),
        (f"clipping_added <= {t.max_clipping_added:g}",
         e.ExpectColumnValuesToBeBetween(column="clipping_added", max_value=t.max_clipping_added)),
        ("output width = input width x scale",
         e.ExpectColumnPairValuesToBeEqual(column_A="output_width", column_B="expected_width")),
        ("output height = input height x scale",
         e.ExpectColumnPairValuesToBeEqual(column_A="output_height", column_B="expected_height")),
        ("every page of the master is in the derivative",
         e.ExpectColumnValuesToBeInSet(column="pages_complete", value_set=[True])),
        ("master_damage is null",
         e.ExpectColumnValuesToBeNull(column="master_damage")),
    ]


@dataclass
class GateReport:
    thresholds: Thresholds
    evaluated: int
    expectations: dict[str, int]  # label → number of images breaking it

    def as_dict(self) -> dict[str, Any]:
        return {"thresholds": asdict(self.thresholds), "evaluated": self.evaluated, "expectations": self.expectations}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GateReport:
        return cls(Thresholds(**values["thresholds"]), values["evaluated"], values["expectations"])


def evaluate(rows: list[dict[str, Any]], thresholds: Thresholds = Thresholds()) -> GateReport:
    """Validate the run's rows and write each one's ``verdict`` and ``failed_expectations`` in place."""
    frame = _frame(rows)
    broken: dict[int, dict[str, list[str]]] = {}  # row → label → the pages that broke it
    counts: dict[str, int] = {}
    if not frame.empty:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        batch = (
            context.data_sources.add_pandas("enhance-run")
            .add_dataframe_asset("images")
            .add_batch_definition_whole_dataframe("run")
            .get_batch(batch_parameters={"dataframe": frame})
        )
        suite = gx.ExpectationSuite(name="enhanced-images")
        for label, expectation in _suite(thresholds):
            expectation.meta = {"label": label}  # how results are told apart (suite ids are unset here)
            suite.add_expectation(expectation)
        result = batch.validate(
            suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["image_id"]}
        )
        for outcome in result.results:
            label = outcome.expectation_config.meta["label"]
            offenders = [item["image_id"].split("/") for item in outcome.result.get("unexpected_index_list") or []]
            for index, page in offenders:
                broken.setdefault(int(index), {}).setdefault(label, []).append(page)
            counts[label] = len({index for index, _ in offenders})
    for i, row in enumerate(rows):
        if row["status"] == "failed":
            row["verdict"] = "failed"
        if row["status"] != "ok":
            continue  # failed, or a duplicate that keeps the verdict of the derivative it points at
        row["failed_expectations"] = [_on_pages(label, pages, row) for label, pages in broken.get(i, {}).items()]
        row["verdict"] = "quarantined" if row["failed_expectations"] else "passed"
    return GateReport(thresholds, len(frame), counts)



def _on_pages(label: str, pages: list[str], row: dict[str, Any]) -> str:
    """A broken expectation as the ledger keeps it, with the pages that broke it where the
    master has more than one ("consistency_psnr_db >= 30 (pages 2, 5)")."""
    if (row.get("pages") or 1) == 1:
        return label
    return f"{label} ({'page' if len(pages) == 1 else 'pages'} {', '.join(pages)})"
