"""`python -m spacy_medlink benchmark zeroshot`: normalization of concepts never seen in training.

A tagger over training concepts (the joint tagger's MEN head) cannot output
a concept it never saw; a linker that scores KB concepts (the gated
normalizer, the KB baseline) can. This splits the gold test mentions by
whether their concept occurs in the training split and reports each
pipeline's recall on both parts, IDs resolved through the pipeline's own KB.
"""
from pathlib import Path
from typing import Callable, List, Optional, Set

import typer

from ._app import benchmark_app


def _resolver(nlp) -> Optional[Callable[[str], str]]:
    for _, proc in nlp.pipeline:
        generator = getattr(proc, "generator", None)
        if generator is not None:
            return generator.kb.resolve
    return None


def _train_concepts(nlp, train: Path, resolve) -> Set[str]:
    from spacy.tokens import DocBin

    from ..ids import split_kb_id

    seen: Set[str] = set()
    for doc in DocBin().from_disk(train).get_docs(nlp.vocab):
        for ent in doc.ents:
            seen.update(resolve(a) if resolve else a for a in split_kb_id(ent.kb_id_))
    return seen


def zeroshot(model: str, train: Path, data: Path, batch_size: int = 32) -> dict:
    import spacy
    from spacy.tokens import DocBin
    from spacy.training import Example

    from ..scoring import score_nen_seen_unseen

    nlp = spacy.load(model)
    resolve = _resolver(nlp)
    seen = _train_concepts(nlp, train, resolve)
    gold = list(DocBin().from_disk(data).get_docs(nlp.vocab))
    predicted = nlp.pipe((doc.text for doc in gold), batch_size=batch_size)
    examples = [Example(pred, ref) for pred, ref in zip(predicted, gold)]
    return {"model": model, "train_concepts": len(seen), **score_nen_seen_unseen(examples, seen, id_resolver=resolve)}


@benchmark_app.command("zeroshot")
def benchmark_zeroshot_cli(
    models: List[str] = typer.Argument(..., help="Pipelines (paths or package names)"),
    train: Path = typer.Option(..., "--train", help="The TRAIN split the pipelines were trained on (.spacy)"),
    data: Path = typer.Option(..., "--data", help="The split to score, e.g. corpus/bc5cdr/test.spacy"),
    output: Path = typer.Option(..., "--output", help="JSON file for the results"),
) -> None:
    """Normalization recall on test mentions of concepts seen / never seen in training."""
    import srsly

    for path in (train, data):
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist")
    rows = []
    for model in models:
        row = zeroshot(model, train, data)
        rows.append(row)
        parts = [f"{split}: {row[split]['correct']}/{row[split]['mentions']}"
                 + (f" = {row[split]['recall']:.3f}" if row[split]["recall"] is not None else "")
                 for split in ("seen", "unseen")]
        typer.echo(f"{model}: " + ", ".join(parts))
    output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output, {"train": str(train), "data": str(data), "results": rows})
    typer.echo(f"Wrote {output}")
