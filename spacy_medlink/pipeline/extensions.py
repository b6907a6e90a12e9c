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


def entity_like(span: Span, entity: Span) -> Span:
    """`span` as an entity with `entity`'s label, concept and medlink values (a
    short form that takes its long form's entity, a coordination its head's)."""
    install_span_extensions()
    out = Span(span.doc, span.start, span.end, label=entity.label, kb_id=entity.kb_id)
    for name in SPAN_EXTENSIONS:
        value = entity._.get(name)
        out._.set(name, list(value) if isinstance(value, list) else value)
    return out
