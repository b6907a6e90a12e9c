"""`split`: hold out the last N docs of a DocBin, e.g. a tuning slice of a
train set whose official dev split is the report (CMeEE: the public test
has no labels, so dev is reported and a slice of train is tuned on)."""
from pathlib import Path

import typer
from spacy.tokens import DocBin
from spacy.vocab import Vocab
from wasabi import msg

from ._app import app


@app.command("split")
def split_cli(
    # fmt: off
    input_path: Path = typer.Argument(..., help="A .spacy file", exists=True, dir_okay=False),
    first_path: Path = typer.Argument(..., help="Output .spacy for all but the last N docs"),
    last_path: Path = typer.Argument(..., help="Output .spacy for the last N docs"),
    n_last: int = typer.Option(..., "--last", "-n", help="How many docs to hold out from the end"),
    # fmt: on
) -> None:
    """Write INPUT's docs to FIRST (all but the last N) and LAST (the last N), in order."""
    docs = list(DocBin().from_disk(input_path).get_docs(Vocab()))
    if not 0 < n_last < len(docs):
        msg.fail(f"--last must be between 1 and {len(docs) - 1} for {input_path} ({len(docs)} docs)", exits=1)
    cut = len(docs) - n_last
    for path, part in ((first_path, docs[:cut]), (last_path, docs[cut:])):
        path.parent.mkdir(parents=True, exist_ok=True)
        DocBin(store_user_data=True, docs=part).to_disk(path)
    msg.good(f"{input_path}: {len(docs)} docs = {cut} in {first_path} + {n_last} in {last_path}")
