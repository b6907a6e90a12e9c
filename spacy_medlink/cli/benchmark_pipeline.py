"""`python -m spacy_medlink benchmark pipeline`: words/s and peak memory of pipelines.

Each pipeline runs in a fresh interpreter, so that its peak RSS is its own and
no pipeline warms caches for the next. The texts are a corpus split's raw
texts (annotations are not read); the timer covers `nlp.pipe` over all of
them after a warm-up on the first few, so load time is reported apart.
`--sweep PIPE.KEY=V1,V2,...` runs each pipeline once per value of one pipe
setting (e.g. the candidates per mention, `gated_normalizer.k=1,5,10,20`).
"""
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .benchmark_kb import peak_rss_mb, rss_mb

WARMUP_DOCS = 5


def run_pipeline(model: str, data: Path, batch_size: int, n_threads: int, setting: Optional[Dict[str, Any]] = None) -> dict:
    """Load `model` (a path or an installed package), time nlp.pipe over `data`'s texts.

    setting: {"pipe.key": value} cfg values set on the loaded pipes first.
    """
    import spacy
    import torch
    from spacy.tokens import DocBin

    torch.set_num_threads(n_threads)
    rss_before = rss_mb()
    start = time.perf_counter()
    nlp = spacy.load(model)
    load_seconds = time.perf_counter() - start
    rss_loaded = rss_mb()
    for name_key, value in (setting or {}).items():
        name, key = name_key.split(".", 1)
        cfg = nlp.get_pipe(name).cfg
        if key not in cfg:
            raise KeyError(f"{model}: pipe {name!r} has no setting {key!r}")
        cfg[key] = value
    texts = [doc.text for doc in DocBin().from_disk(data).get_docs(nlp.vocab)]
    for _ in nlp.pipe(texts[:WARMUP_DOCS], batch_size=batch_size):
        pass
    words = ents = 0
    start = time.perf_counter()
    for doc in nlp.pipe(texts, batch_size=batch_size):
        words += len(doc)
        ents += len(doc.ents)
    seconds = time.perf_counter() - start
    return {
        "model": model,
        "setting": setting or {},
        "pipeline": nlp.pipe_names,
        "docs": len(texts),
        "words": words,
        "ents": ents,
        "seconds": round(seconds, 2),
        "words_per_second": round(words / seconds, 1),
        "docs_per_second": round(len(texts) / seconds, 2),
        "load_seconds": round(load_seconds, 2),
        "rss_loaded_mb": round(rss_loaded - rss_before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "batch_size": batch_size,
        "threads": n_threads,
    }


def _subprocess(model: str, data: Path, batch_size: int, n_threads: int, setting: Dict[str, Any]) -> dict:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "spacy_medlink.cli.benchmark_pipeline", model, str(data), str(batch_size),
         str(n_threads), json.dumps(setting)],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark of {model} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_sweep(text: Optional[str]) -> Tuple[Optional[str], List[Any]]:
    """"pipe.key=1,5,10" -> ("pipe.key", [1, 5, 10]); None -> (None, [None]).
    A value that is not JSON is a string: "pipe.key=doc,sentence"."""
    if not text:
        return None, [None]
    name_key, _, values = text.partition("=")
    if "." not in name_key or not values:
        raise ValueError(f"--sweep: expected PIPE.KEY=V1,V2,..., not {text!r}")
    return name_key.strip(), [_value(v.strip()) for v in values.split(",") if v.strip()]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _register() -> None:
    import srsly
    import typer

    from ._app import benchmark_app

    @benchmark_app.command("pipeline")
    def benchmark_pipeline_cli(
        models: List[str] = typer.Argument(..., help="Pipelines to compare (paths or package names); the first is the reference"),
        data: Path = typer.Option(..., "--data", help="A .spacy split whose texts are processed, e.g. corpus/bc5cdr/test.spacy"),
        output: Path = typer.Option(Path("metrics/annotate/benchmark_pipeline.json"), "--output"),
        batch_size: int = typer.Option(32, "--batch-size", help="nlp.pipe batch size (docs)"),
        threads: int = typer.Option(1, "--threads", help="torch threads per pipeline"),
        sweep: Optional[str] = typer.Option(None, "--sweep", help="PIPE.KEY=V1,V2,...: one run per value of a pipe setting"),
    ) -> None:
        """Words per second and peak memory of each pipeline with nlp.pipe, in one run."""
        if not data.exists():
            raise typer.BadParameter(f"{data} does not exist")
        try:
            key, values = parse_sweep(sweep)
        except ValueError as err:
            raise typer.BadParameter(str(err))
        rows = []
        for model in models:
            for value in values:
                setting = {key: value} if key else {}
                try:
                    row = _subprocess(model, data, batch_size, threads, setting)
                except RuntimeError as err:
                    raise typer.BadParameter(str(err))
                rows.append(row)
                label = f"{model} {key}={value}" if key else model
                typer.echo(f"{label}: {row['words_per_second']:.0f} words/s, {row['docs_per_second']:.1f} docs/s, "
                           f"peak RSS {row['peak_rss_mb']:.0f} MB (load {row['load_seconds']:.1f}s)")
        reference = rows[0]["words_per_second"]
        for row in rows:
            row["speed_vs_first"] = round(row["words_per_second"] / reference, 3)
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, {"data": str(data), "results": rows})
        typer.echo(f"Wrote {output}")


_register()

if __name__ == "__main__":
    import sys

    model_arg, data_arg, batch_arg, threads_arg, setting_arg = sys.argv[1:6]
    print(json.dumps(run_pipeline(model_arg, Path(data_arg), int(batch_arg), int(threads_arg), json.loads(setting_arg))))
