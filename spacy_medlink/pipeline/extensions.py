"""Span extensions every medlink component writes (DESIGN.md: ``medlink_*``)."""
from spacy.tokens import Span

SPAN_EXTENSIONS = {
    # confidence of the concept in ent.kb_id_ (component-specific scale, higher is surer)
    "medlink_score": None,
    # ranked [concept_id, score] pairs the component considered
    "medlink_candidates": None,
}


def install_span_extensions() -> None:
    for name, default in SPAN_EXTENSIONS.items():
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)
