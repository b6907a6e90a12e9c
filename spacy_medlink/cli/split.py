"""`split`: hold out the last N docs of a DocBin, e.g. a tuning slice of a
train set whose official dev split is the report (CMeEE: the public test
has no labels, so dev is reported and a slice of train is tuned on), or
fold I of K contiguous folds, for k-fold cross-validation stacking.

With --blocks B the N held-out docs are the ends of B equal segments of the
file instead of its end: a corpus stored in source order (CMeEE's train is a
run of textbook chapters, its last 1,000 sentences one paediatrics chapter
with other entity types and shorter sentences than dev) gets a slice spread
over all its sources, while each block stays a contiguous passage, so
neighbouring sentences of one passage do not straddle the two outputs
except at the B block edges.

`merge` is the inverse: the docs of several files, in order, in one."""
from pathlib import Path
from typing import List, Set

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
    blocks: int = typer.Option(1, "--blocks", "-b", help="With --last: the N docs are the ends of B equal segments of INPUT, not its end"),
    # fmt: on
) -> None:
    """Write INPUT's docs to FIRST and LAST, in order: LAST holds the last N
    docs (--last; with --blocks B, the last N/B docs of each of B equal
    segments) or fold I of K (--folds, --fold), FIRST all the others."""
    docs = list(DocBin().from_disk(input_path).get_docs(Vocab()))
    if bool(n_last) == bool(folds):
        msg.fail("give either --last N or --folds K (with --fold I)", exits=1)
    if folds and blocks != 1:
        msg.fail("--blocks goes with --last, not --folds", exits=1)
    if folds:
        if not (2 <= folds <= len(docs) and 0 <= fold < folds):
            msg.fail(f"--folds must be 2..{len(docs)} and --fold 0..K-1, not {folds} and {fold}", exits=1)
        held_at = set(range(fold * len(docs) // folds, (fold + 1) * len(docs) // folds))
    else:
        if not 0 < n_last < len(docs):
            msg.fail(f"--last must be between 1 and {len(docs) - 1} for {input_path} ({len(docs)} docs)", exits=1)
        if not 1 <= blocks <= n_last:
            msg.fail(f"--blocks must be between 1 and --last ({n_last}), not {blocks}", exits=1)
        held_at = held_positions(len(docs), n_last, blocks)
    rest = [doc for i, doc in enumerate(docs) if i not in held_at]
    held = [doc for i, doc in enumerate(docs) if i in held_at]
    for path, part in ((first_path, rest), (last_path, held)):
        path.parent.mkdir(parents=True, exist_ok=True)
        DocBin(store_user_data=True, docs=part).to_disk(path)
    msg.good(f"{input_path}: {len(docs)} docs = {len(rest)} in {first_path} + {len(held)} in {last_path}")


def held_positions(n_docs: int, n_held: int, blocks: int = 1) -> Set[int]:
    """Positions of the held-out docs: the last n_held, or with blocks B the
    last n_held·(j+1)//B − n_held·j//B docs of each of B equal segments."""
    held: Set[int] = set()
    for j in range(blocks):
        seg_end = n_docs * (j + 1) // blocks
        size = n_held * (j + 1) // blocks - n_held * j // blocks
        held.update(range(seg_end - size, seg_end))
    return held


@app.command("merge")
def merge_cli(
    # fmt: off
    output_path: Path = typer.Argument(..., help="Output .spacy"),
    input_paths: List[Path] = typer.Argument(..., help="The .spacy files to join, in order", exists=True, dir_okay=False),
    # fmt: on
) -> None:
    """Write the docs of every INPUT, in order, to OUTPUT: split's inverse, e.g.
    train + dev as one file for a KB that holds both splits' mentions once
    dev has been tuned on (the dictionaries of the BioSyn papers)."""
    docs = []
    for path in input_paths:
        part = list(DocBin().from_disk(path).get_docs(Vocab()))
        msg.info(f"{path}: {len(part)} docs")
        docs.extend(part)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(store_user_data=True, docs=docs).to_disk(output_path)
    msg.good(f"{len(docs)} docs from {len(input_paths)} files in {output_path}")
