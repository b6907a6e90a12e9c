"""`python -m spacy_medlink kb attach`: give a trained pipeline another KB or ranker."""
from pathlib import Path

import typer

from .kb import kb_app


@kb_app.command("attach")
def kb_attach_cli(
    model: Path = typer.Argument(..., help="A trained pipeline folder"),
    kb_dir: Path = typer.Argument(..., help="KB folder whose trained ranker (ranker/) to attach, or with --whole the KB to attach"),
    output: Path = typer.Argument(..., help="Folder to save the pipeline to"),
    whole: bool = typer.Option(False, "--whole", help="Attach the whole KB (concepts, names, index and its ranker, if any), not only the ranker: e.g. a KB that also holds the dev split's mentions, swapped in after tuning on dev"),
) -> None:
    """Give every KB-using component of a trained pipeline the ranker of `kb_dir`
    (same KB, no retraining), or with --whole the KB itself."""
    import spacy

    from ..kb.candidates import RANKER_DIR, CandidateGenerator
    from ..kb.ranker import CandidateRanker

    if whole:
        generator = CandidateGenerator.from_disk(kb_dir)
    elif not (kb_dir / RANKER_DIR / "ranker.msgpack").exists():
        raise typer.BadParameter(f"{kb_dir} has no trained ranker (run `python -m spacy_medlink kb ranker` first)")
    else:
        ranker = CandidateRanker.from_disk(kb_dir / RANKER_DIR)
    nlp = spacy.load(model)
    names = [name for name, proc in nlp.pipeline if getattr(proc, "generator", None) is not None]
    if not names:
        raise typer.BadParameter(f"{model} has no component with a KB")
    for name in names:
        if whole:
            nlp.get_pipe(name).generator = generator
        else:
            nlp.get_pipe(name).generator.ranker = ranker
    nlp.to_disk(output)
    typer.echo(f"Attached {kb_dir if whole else kb_dir / RANKER_DIR} to {', '.join(names)}; saved {output}")
