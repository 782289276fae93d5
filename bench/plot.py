"""The plot in docs/benchmarks.md: output MP/s per path, model and input size, from the last run.

    .venv/bin/python bench/plot.py      # reads bench/results/reference_paths.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "reference_paths.json"
OUT = ROOT / "docs" / "benchmarks-reference-paths.png"
SPAN_TARGET_MP_S = 2.0
SHOWN = {"reference fp32 whole": "#9e9e9e", "ncnn": "#e0a040", "ours": "#2e6da4"}


def plot(report: dict[str, object], out: Path) -> Path:
    rows = report["results"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(3.4 * len(models), 3.2), dpi=110)
    width = 0.8 / len(SHOWN)
    for ax, model in zip(axes, models):
        sizes = list(dict.fromkeys(r["input"] for r in rows if r["model"] == model))
        for i, (path, colour) in enumerate(SHOWN.items()):
            values = [next(r["output_mp_per_s"] for r in rows if (r["model"], r["input"], r["path"]) == (model, s, path))
                      for s in sizes]
            ax.bar([k + (i - 1) * width for k in range(len(sizes))], values, width, color=colour, label=path)
        ax.set_xticks(range(len(sizes)), [s.split("x")[0] + "²" for s in sizes], fontsize=8)
        ax.set_title(model, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.set_xlabel("input", fontsize=8)
        if model.startswith("span"):  # issue 6: compact/SPAN presets >= 2 output MP/s
            ax.axhline(SPAN_TARGET_MP_S, color="#c0392b", linestyle="--", linewidth=1, label="target")
    axes[0].set_ylabel("output megapixels / s", fontsize=8)
    handles = {label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    machine = report["machine"]
    fig.suptitle(f"CPU, {machine['threads']} threads ({machine['cpu']}, torch {machine['torch']}): medians of "
                 "interleaved rounds", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(out)
    plt.close(fig)
    return out


def main() -> int:
    print(f"written to {plot(json.loads(RESULTS.read_text()), OUT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
