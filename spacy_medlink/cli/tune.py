"""`python -m spacy_medlink tune threshold`: pick a pipe's KB-fallback threshold on dev.

`medlink_joint_tagger` hands a span to the KB when its MEN head is less sure
than `men_threshold`. The best value depends on the training run (how sharp
the MEN head became), so it is tuned after training, on dev only: the model
runs once per batch and only the decoding is repeated for each threshold.
The pipeline is saved with the best value; the sweep goes to a JSON file.
"""
from pathlib import Path
from typing import Dict, List, Optional

import typer

from ._app import app

tune_app = typer.Typer(help="Tune decoding settings of a trained pipeline on dev.", no_args_is_help=True)
app.add_typer(tune_app, name="tune")

DEFAULT_GRID = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.01"


def sweep_threshold(nlp, pipe_name: str, examples: List, grid: List[float], batch_size: int = 32) -> List[Dict]:
    """Scores of `pipe_name` on `examples` for each `men_threshold` in `grid`.

    The pipes before `pipe_name` and its model run once per batch; only
    `set_annotations` (span decoding, KB lookups) runs per threshold.
    """
    from spacy.training import Example
    from spacy.util import minibatch

    pipe = nlp.get_pipe(pipe_name)
    if "men_threshold" not in pipe.cfg:
        raise ValueError(f"Pipe {pipe_name!r} ({type(pipe).__name__}) has no men_threshold to tune")
    before = []
    for name, proc in nlp.pipeline:
        if name == pipe_name:
            break
        before.append(proc)
    saved = pipe.cfg["men_threshold"]
    predicted: Dict[float, List] = {t: [] for t in grid}
    try:
        for batch in minibatch(examples, batch_size):
            docs = [nlp.make_doc(eg.reference.text) for eg in batch]
            for proc in before:
                docs = list(proc.pipe(docs))
            scores = pipe.predict(docs)
            for t in grid:
                pipe.cfg["men_threshold"] = t
                copies = [doc.copy() for doc in docs]
                pipe.set_annotations(copies, scores)
                predicted[t].extend(Example(doc, eg.reference) for doc, eg in zip(copies, batch))
    finally:
        pipe.cfg["men_threshold"] = saved
    return [{"men_threshold": t, **_summary(pipe.score(predicted[t]))} for t in grid]


def _summary(scores: Dict) -> Dict:
    return {k: scores.get(k) for k in ("ents_f", "nen_p", "nen_r", "nen_f", "nen_doc_f")}


@tune_app.command("threshold")
def tune_threshold_cli(
    model: Path = typer.Argument(..., help="Trained pipeline folder (e.g. training/bc5cdr_joint_tok2vec/model-best)"),
    dev: Path = typer.Argument(..., help="DEV split (.spacy); never the test split"),
    output: Path = typer.Argument(..., help="Folder to save the pipeline with the best threshold to"),
    pipe_name: str = typer.Option("joint_tagger", "--pipe", help="Name of the pipe to tune"),
    grid: str = typer.Option(DEFAULT_GRID, "--grid", help="Comma-separated thresholds (>1 = always ask the KB)"),
    metric: str = typer.Option("nen_f", "--metric", help="Dev score to maximize"),
    sweep_output: Optional[Path] = typer.Option(None, "--sweep-output", help="Write the sweep (one row per threshold) as JSON"),
) -> None:
    """Sweep men_threshold on dev, save the pipeline with the best one."""
    import spacy
    import srsly
    from spacy.tokens import DocBin
    from spacy.training import Example

    nlp = spacy.load(model)
    if pipe_name not in nlp.pipe_names:
        raise typer.BadParameter(f"{model} has no pipe {pipe_name!r} (pipes: {nlp.pipe_names})")
    values = [float(v) for v in grid.split(",") if v.strip()]
    if not values:
        raise typer.BadParameter("--grid is empty")
    gold = list(DocBin().from_disk(dev).get_docs(nlp.vocab))
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold]
    rows = sweep_threshold(nlp, pipe_name, examples, values)
    if any(row.get(metric) is None for row in rows):
        raise typer.BadParameter(f"metric {metric!r} is not among the scores ({sorted(rows[0])})")
    for row in rows:
        typer.echo("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    best = max(rows, key=lambda row: row[metric])  # first of equals: the lowest threshold
    nlp.get_pipe(pipe_name).cfg["men_threshold"] = best["men_threshold"]
    nlp.get_pipe_config(pipe_name)["men_threshold"] = best["men_threshold"]  # config.cfg says it too
    nlp.to_disk(output)
    typer.echo(f"Best men_threshold {best['men_threshold']} ({metric} {best[metric]:.4f} on {dev}); saved {output}")
    if sweep_output is not None:
        sweep_output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(sweep_output, {"model": str(model), "dev": str(dev), "pipe": pipe_name, "metric": metric,
                                        "best": best, "sweep": rows})
