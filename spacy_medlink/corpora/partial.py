"""Partially annotated training corpora: which labels a corpus annotates
completely, and which of its spans are known to be none of the model's labels.

A corpus that annotates diseases only (NCBI) says nothing about chemicals: its
unlabelled tokens must stay open for Chemical, not become "outside". A gene
corpus says that its gene mentions are neither chemicals nor diseases, and
nothing about the rest. `mark_partial` writes both facts on a reference Doc;
the trainable KB pipes read them (`pipeline._kb_pipe.KBPipe._partial_targets`)
and train with the partial-label CRF.
"""
from typing import Iterable, Sequence

from spacy.tokens import Doc

# read by the trainable KB pipes (pipeline/_kb_pipe.py)
ANNOTATED_KEY = "medlink_annotated"  # user_data: the labels the Doc annotates completely
OUTSIDE_KEY = "medlink_outside"  # span group: spans that are none of the labels


def mark_partial(doc: Doc, annotated: Sequence[str], outside: Iterable[str] = ()) -> int:
    """Record that `doc` annotates exactly the labels `annotated`, and move its
    entities (and mention spans) labelled with one of `outside` into
    ``doc.spans[OUTSIDE_KEY]``. Returns the number of spans moved."""
    outside = set(outside)
    doc.user_data[ANNOTATED_KEY] = sorted(set(annotated))
    moved = [e for e in doc.ents if e.label_ in outside]
    if "mentions" in doc.spans:
        keep = [s for s in doc.spans["mentions"] if s.label_ not in outside]
        moved_spans = [s for s in doc.spans["mentions"] if s.label_ in outside]
        doc.spans["mentions"] = keep
        moved = moved_spans or moved
    doc.spans[OUTSIDE_KEY] = list(moved)
    doc.ents = [e for e in doc.ents if e.label_ not in outside]
    return len(moved)
