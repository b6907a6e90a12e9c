"""`split`: hold out the last N docs of a DocBin, e.g. a tuning slice of a
train set whose official dev split is the report (CMeEE: the public test
has no labels, so dev is reported and a slice of train is tuned on), or
fold I of K contiguous folds, for k-fold cross-validation stacking."""
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
    first_path: Path = typer.Argument(..., help="Output .spacy for the docs not held out"),
    last_path: Path = typer.Argument(..., help="Output .spacy for the held-out docs"),
    n_last: int = typer.Option(0, "--last", "-n", help="How many docs to hold out from the end"),
    folds: int = typer.Option(0, "--folds", "-k", help="Instead of --last: K contiguous folds; LAST gets fold --fold"),
    fold: int = typer.Option(0, "--fold", "-i", help="Which fold (0-based) LAST gets, with --folds"),
    # fmt: on
) -> None:
    """Write INPUT's docs to FIRST and LAST, in order: LAST holds the last N
    docs (--last) or fold I of K (--folds, --fold), FIRST all the others."""
    docs = list(DocBin().from_disk(input_path).get_docs(Vocab()))
    if bool(n_last) == bool(folds):
        msg.fail("give either --last N or --folds K (with --fold I)", exits=1)
    if folds:
        if not (2 <= folds <= len(docs) and 0 <= fold < folds):
            msg.fail(f"--folds must be 2..{len(docs)} and --fold 0..K-1, not {folds} and {fold}", exits=1)
        start, end = fold * len(docs) // folds, (fold + 1) * len(docs) // folds
    else:
        if not 0 < n_last < len(docs):
            msg.fail(f"--last must be between 1 and {len(docs) - 1} for {input_path} ({len(docs)} docs)", exits=1)
        start, end = len(docs) - n_last, len(docs)
    rest, held = docs[:start] + docs[end:], docs[start:end]
    for path, part in ((first_path, rest), (last_path, held)):
        path.parent.mkdir(parents=True, exist_ok=True)
        DocBin(store_user_data=True, docs=part).to_disk(path)
    msg.good(f"{input_path}: {len(docs)} docs = {len(rest)} in {first_path} + {len(held)} in {last_path}")
