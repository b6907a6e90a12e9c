"""`python -m spacy_medlink evaluate MODEL DATA`: spaCy's evaluation, with every score we have in the console.

`spacy evaluate` prints the scores spaCy knows (NER); normalization is only in
its `--output` JSON. This runs the same evaluation (spaCy's own function, so
the JSON is the same) and prints NER, mention-level and document-level
normalization, and nested span scores where the pipeline has them, per type.
"""
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from ._app import app

TABLES = (
    ("NER", "ents"),
    ("Normalization, mention level", "nen"),
    ("Normalization, document level", "nen_doc"),
    ("Nested spans", "spans_nested"),
)


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def score_tables(scores: Dict[str, Any]) -> List[str]:
    """Console tables: overall and per type, for each score family the pipeline produced."""
    from wasabi import table

    out = []
    for title, key in TABLES:
        if scores.get(f"{key}_f") is None and not scores.get(f"{key}_per_type"):
            continue
        rows = [("ALL", _pct(scores.get(f"{key}_p")), _pct(scores.get(f"{key}_r")), _pct(scores.get(f"{key}_f")))]
        for label, prf in sorted((scores.get(f"{key}_per_type") or {}).items()):
            rows.append((label, _pct(prf.get("p")), _pct(prf.get("r")), _pct(prf.get("f"))))
        out.append(f"{title}\n" + table(rows, header=("", "P", "R", "F"), aligns=("l", "r", "r", "r")))
    return out


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Pipeline (path or package name)"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="JSON of every score (as `spacy evaluate --output` writes)"),
    gpu_id: int = typer.Option(-1, "--gpu-id"),
) -> None:
    """Evaluate a pipeline; print NER, normalization (mention and document level) and nested spans per type."""
    from spacy.cli.evaluate import evaluate

    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
    scores = evaluate(model, data_path, output=output, use_gpu=gpu_id, silent=True)
    for block in score_tables(scores):
        typer.echo(block)
    if scores.get("speed") is not None:
        typer.echo(f"Speed: {scores['speed']:.0f} words/s")
    if output is not None:
        typer.echo(f"Wrote {output}")
