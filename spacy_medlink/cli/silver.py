"""`silver`: unlabeled text annotated by trained pipelines, as a .spacy file to train on beside
the gold (self-training, issue 19). See `corpora/silver.py` for what is kept."""
import json
import random
from collections import Counter
from pathlib import Path
from typing import List, Optional

import spacy
import typer
from spacy.tokens import DocBin
from wasabi import msg

from ..corpora.silver import silver_docs
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
    output_path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs).to_disk(output_path)
    report = {"models": models, "texts": [str(p) for p in text_paths], "limit": limit, "min_words": min_words,
              "seed": seed, **dict(sorted(counts.items()))}
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2), encoding="utf8")
    msg.good(f"{len(docs)} silver docs in {output_path}: {counts['entities']} agreed entities, "
             f"{counts['disputed']} disputed ({counts['missing_tokens']} tokens missing); "
             f"{counts['lines_read']} lines read, {counts['lines_eligible']} eligible, {counts['lines_drawn']} drawn")
