"""`silver`: unlabeled text annotated by trained pipelines, as a .spacy file to train on beside
the gold (self-training); `complete`: a gold corpus's unannotated labels filled in
the same way (multi-corpus training). See `corpora/silver.py` for what is kept."""
import json
import random
from collections import Counter
from pathlib import Path
from typing import List, Optional

import spacy
import typer
from spacy.tokens import DocBin
from wasabi import msg

from ..corpora.silver import completed_docs, silver_docs
from ._app import app
from .vectors import read_lines


@app.command("silver")
def silver_cli(
    # fmt: off
    output_path: Path = typer.Argument(..., help="Output .spacy"),
    text_paths: List[Path] = typer.Argument(..., help="Text files, one unit (paragraph) per line, gzipped or not; natural case", exists=True, dir_okay=False),
    models: List[str] = typer.Option(..., "--model", "-m", help="A teacher pipeline; give two or more (seeds) to keep only the entities they agree on"),
    limit: int = typer.Option(2000, "--limit", "-n", help="How many lines to annotate, drawn at random (--seed) from the eligible ones"),
    min_words: int = typer.Option(20, "--min-words", help="Lines with fewer whitespace words are not eligible (titles, debris)"),
    seed: int = typer.Option(0, "--seed"),
    report_path: Optional[Path] = typer.Option(None, "--report", help="Counts as JSON (lines read, eligible, drawn; entities kept per label, disputed)"),
    # fmt: on
) -> None:
    """Annotate LIMIT lines of TEXTS with every teacher and write the entities they agree on."""
    counts: Counter = Counter()
    eligible = []
    for path in text_paths:
        for line in read_lines(path):
            counts["lines_read"] += 1
            if len(line.split()) >= min_words:
                eligible.append(line)
    counts["lines_eligible"] = len(eligible)
    drawn = sorted(random.Random(seed).sample(range(len(eligible)), min(limit, len(eligible))))
    counts["lines_drawn"] = len(drawn)
    teachers = [spacy.load(m) for m in models]
    docs = silver_docs(teachers, (eligible[i] for i in drawn), counts)
    _write(output_path, docs, report_path, {"models": models, "texts": [str(p) for p in text_paths], "limit": limit,
                                            "min_words": min_words, "seed": seed, **dict(sorted(counts.items()))})
    msg.good(f"{len(docs)} silver docs in {output_path}: {counts['entities']} agreed entities, "
             f"{counts['disputed']} disputed ({counts['missing_tokens']} tokens missing); "
             f"{counts['lines_read']} lines read, {counts['lines_eligible']} eligible, {counts['lines_drawn']} drawn")


@app.command("complete")
def complete_cli(
    # fmt: off
    output_path: Path = typer.Argument(..., help="Output .spacy"),
    gold_paths: List[Path] = typer.Argument(..., help="Gold .spacy files of a corpus that leaves --label unannotated", exists=True, dir_okay=False),
    models: List[str] = typer.Option(..., "--model", "-m", help="A teacher pipeline that predicts --label; give two or more to keep only what they agree on"),
    labels: List[str] = typer.Option(..., "--label", "-l", help="A label the gold does not annotate, filled in by the teachers"),
    as_missing: bool = typer.Option(False, "--as-missing", help="Mark every teacher-predicted entity's tokens missing instead of adding the agreed ones (for text unlike the teachers' training data)"),
    report_path: Optional[Path] = typer.Option(None, "--report", help="Counts as JSON (docs, gold entities, entities added per label, disputed, overlapping gold)"),
    # fmt: on
) -> None:
    """Fill in the labels a gold corpus leaves out (NCBI Disease: Chemical) with the entities
    every teacher agrees on, disputed tokens missing, so the corpus can be trained on beside
    one that annotates every label (multi-corpus training). The gold entities are kept."""
    teachers = [spacy.load(m) for m in models]
    unknown = [label for label in labels if not all(any(label in labs for labs in nlp.pipe_labels.values()) for nlp in teachers)]
    if unknown:
        msg.fail(f"Not every teacher predicts {unknown}: check --label against the teachers' labels", exits=1)
    counts: Counter = Counter()
    docs = []
    for path in gold_paths:
        golds = list(DocBin().from_disk(path).get_docs(teachers[0].vocab))
        gold_labels = sorted({e.label_ for g in golds for e in g.ents})
        clash = sorted(set(labels) & set(gold_labels))
        if clash:
            msg.fail(f"{path} already annotates {clash}: complete only fills labels the gold leaves out", exits=1)
        counts["docs_read"] += len(golds)
        docs.extend(completed_docs(teachers, golds, labels, counts, add_agreed=not as_missing))
    _write(output_path, docs, report_path, {"models": models, "gold": [str(p) for p in gold_paths], "labels": labels,
                                            "as_missing": as_missing, **dict(sorted(counts.items()))})
    msg.good(f"{len(docs)} of {counts['docs_read']} docs in {output_path}: {counts['gold_entities']} gold entities kept, "
             f"{counts['entities']} added, {counts['disputed']} disputed, {counts['agreed_missing']} agreed set missing ({counts['missing_tokens']} tokens missing), "
             f"{counts['overlapping_gold']} overlapping gold left out")


def _write(output_path: Path, docs: List, report_path: Optional[Path], report: dict) -> None:
    """The docs (with their user data: a gold corpus's relations) and the report, if asked for."""
    output_path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(store_user_data=True, docs=docs).to_disk(output_path)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2), encoding="utf8")
