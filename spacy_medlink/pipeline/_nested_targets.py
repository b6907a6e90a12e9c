"""Gold targets of the nested recognizer: per entity type, a tag sequence for
the CRF and a banded span matrix for the Biaffine head. Apart from the pipe
because they read only the examples, the labels and the tag scheme."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Span
from spacy.training import Example
from spacy.util import filter_spans

from ..ml.nested_recognizer import type_tags


def nested_targets(
    examples: Sequence[Example],
    key: str,
    labels: Sequence[str],
    tag_scheme: str,
    n_positions: int,
    band: Optional[int],
) -> Tuple[numpy.ndarray, Optional[numpy.ndarray]]:
    """Gold tags (B, K, T) and Biaffine span labels (B, K, T, L); -1 = unknown.

    A sentence whose reference has no doc.spans[key] has no
    annotation: all unknown. Gold spans longer than the band are known
    to the CRF only.
    """
    K = len(labels)
    B = len(examples)
    tag_index = {tag: i for i, tag in enumerate(type_tags(tag_scheme))}
    bioes = tag_scheme == "BIOES"
    label_index = {label: k for k, label in enumerate(labels)}
    tags = numpy.full((B, K, n_positions), -1, dtype=numpy.int64)
    spans = None if band is None else numpy.full((B, K, n_positions, band), -1, dtype=numpy.int64)
    for b, eg in enumerate(examples):
        if key not in eg.reference.spans:
            continue
        n = len(eg.predicted)
        tags[b, :, :n] = tag_index["O"]
        if spans is not None:
            valid = numpy.arange(n)[:, None] + numpy.arange(band)[None, :] < n
            spans[b, :, :n][:, valid] = 0
        aligned = eg.get_aligned_spans_y2x(eg.reference.spans[key], allow_overlap=True)
        by_type: Dict[int, List[Span]] = {}
        for span in aligned:
            k = label_index.get(span.label_)
            if k is None:
                continue
            by_type.setdefault(k, []).append(span)
            if spans is not None and span.end - span.start <= band:
                spans[b, k, span.start, span.end - span.start - 1] = 1
        for k, type_spans in by_type.items():
            for span in filter_spans(type_spans):
                if bioes and len(span) == 1:
                    tags[b, k, span.start] = tag_index["U-ENT"]
                    continue
                tags[b, k, span.start] = tag_index["B-ENT"]
                tags[b, k, span.start + 1 : span.end] = tag_index["I-ENT"]
                if bioes:
                    tags[b, k, span.end - 1] = tag_index["L-ENT"]
    return tags, spans
