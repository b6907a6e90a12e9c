"""`python -m spacy_medlink benchmark load`: what a user pays to install and start a pipeline.

For each pipeline (a folder, or an installed package name): its size on disk,
the size of its component folders, the size of a wheel when one is given, and,
in fresh subprocesses (the pipelines taking turns, `--repeats` times each), the
seconds to import spaCy and spacy-medlink, to `spacy.load` the pipeline, and to
annotate one sentence, with the resident memory after it. The median of the
repeats is reported. spaCy imports every installed package that registers
`spacy_factories` entry points when it creates a `Language` (spacy-transformers
among them, when installed), so the load time includes those imports; the
report names the packages that were installed.
"""
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from ._app import benchmark_app

SENTENCE = "Cisplatin-induced nephrotoxicity was seen in two patients with ovarian cancer."

_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import spacy, spacy_medlink
t1 = time.perf_counter()
nlp = spacy.load(sys.argv[1])
t2 = time.perf_counter()
doc = nlp(sys.argv[2])
t3 = time.perf_counter()
import psutil
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_doc_s": t3 - t2,
                  "rss_mb": psutil.Process().memory_info().rss / 2**20,
                  "ents": [[e.text, e.label_, e.kb_id_] for e in doc.ents]}))
"""


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _probe(model: str) -> Dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _PROBE, model, SENTENCE], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"loading {model} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _installed(names: List[str]) -> Dict[str, Optional[str]]:
    from importlib.metadata import PackageNotFoundError, version

    found: Dict[str, Optional[str]] = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


@benchmark_app.command("load")
def benchmark_load_cli(
    models: List[str] = typer.Argument(..., help="Pipelines: folders or installed package names"),
    wheels: Optional[str] = typer.Option(None, "--wheels", help="Comma-separated wheel files, one per pipeline, in order"),
    repeats: int = typer.Option(3, "--repeats", min=1),
    output: Path = typer.Option(Path("metrics/annotate/benchmark_load.json"), "--output"),
) -> None:
    """Size on disk, wheel size, and fresh-process import, load and first-sentence time of each pipeline."""
    wheel_list = [Path(w) for w in wheels.split(",")] if wheels else []
    if wheel_list and len(wheel_list) != len(models):
        raise typer.BadParameter(f"{len(wheel_list)} wheels for {len(models)} pipelines")
    rows: List[Dict[str, Any]] = []
    for i, model in enumerate(models):
        row: Dict[str, Any] = {"model": model}
        path = Path(model)
        if path.exists():
            row["disk_mb"] = round(_size_mb(path), 3)
            row["components_mb"] = {p.name: round(_size_mb(p), 3) for p in sorted(path.iterdir()) if p.is_dir()}
        if wheel_list:
            row["wheel"] = str(wheel_list[i])
            row["wheel_mb"] = round(_size_mb(wheel_list[i]), 3)
        row["runs"] = []
        rows.append(row)
    for _ in range(repeats):  # the pipelines take turns, so that machine load falls on each alike
        for row in rows:
            row["runs"].append(_probe(row["model"]))
    for row in rows:
        for key in ("import_s", "load_s", "first_doc_s", "rss_mb"):
            row[f"median_{key}"] = round(statistics.median(r[key] for r in row["runs"]), 3)
        row["ents"] = row["runs"][0]["ents"]
        row["same_entities_every_run"] = all(r["ents"] == row["ents"] for r in row["runs"])
        typer.echo(json.dumps({k: v for k, v in row.items() if k != "runs"}))
    if len(rows) > 1:
        base = rows[0]
        for row in rows[1:]:
            row["load_ratio_vs_first"] = round(row["median_load_s"] / base["median_load_s"], 3)
            for key in ("disk_mb", "wheel_mb"):
                if row.get(key) is not None and base.get(key):
                    row[f"{key[:-3]}_ratio_vs_first"] = round(row[key] / base[key], 3)
    report = {"sentence": SENTENCE, "repeats": repeats,
              "installed": _installed(["spacy", "spacy-transformers", "torch", "spacy-medlink"]), "results": rows}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2), encoding="utf8")
    typer.echo(f"Wrote {output}")
