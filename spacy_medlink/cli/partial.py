"""`partial`: mark a converted corpus as partially annotated for training
beside other corpora (`corpora.partial`)."""
from pathlib import Path

import typer
from wasabi import msg

from ._app import app


@app.command("partial")
def partial_cli(
    # fmt: off
    input_path: Path = typer.Argument(..., help="Converted corpus (.spacy)", exists=True, dir_okay=False),
    output_path: Path = typer.Argument(..., help="Output .spacy"),
    annotated: str = typer.Option(..., "--annotated", help="Comma-separated labels this corpus annotates completely (its other tokens stay open for the other labels); '' for none"),
    outside: str = typer.Option("", "--outside", help="Comma-separated labels whose spans are none of the model's labels (e.g. Gene): moved out of the entities, trained as outside"),
    # fmt: on
) -> None:
    """Write which labels a corpus annotates, and its known non-entities, into each Doc."""
    from collections import Counter

    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    from ..corpora.partial import mark_partial

    labels = [x.strip() for x in annotated.split(",") if x.strip()]
    outside_labels = [x.strip() for x in outside.split(",") if x.strip()]
    docs = list(DocBin().from_disk(input_path).get_docs(Vocab()))
    moved = 0
    kept: Counter = Counter()
    for doc in docs:
        moved += mark_partial(doc, labels, outside_labels)
        kept.update(e.label_ for e in doc.ents)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(store_user_data=True, docs=docs).to_disk(output_path)
    msg.good(f"{len(docs)} docs to {output_path}: annotated {labels or 'none'}, "
             f"{moved} spans of {outside_labels or 'no label'} as outside, entities kept {dict(kept)}")
