"""displaCy with each entity linked to its concept's record.

displaCy's `kb_url_template` is one URL pattern for every ID, but our IDs
come from two vocabularies: MeSH (bare ``D009369``, ``C535662``) and OMIM
(``OMIM:219700``). `render` hands displaCy its manual format instead, with a
`kb_url` per entity from `concept_url`; a composite ID links its first concept
and shows all of them.
"""
import re
from typing import Any, Dict, Iterable, List, Optional, Union

from spacy import displacy
from spacy.tokens import Doc

from .ids import split_kb_id

_MESH = re.compile(r"^[CD]\d{6,9}$")
MESH_URL = "https://meshb.nlm.nih.gov/record/ui?ui={}"
OMIM_URL = "https://omim.org/entry/{}"


def concept_url(kb_id: str) -> Optional[str]:
    """The record page of a concept ID (the first of a composite), or None."""
    first = re.split(r"[|+]", kb_id, maxsplit=1)[0].strip() if kb_id else ""
    if _MESH.match(first):
        return MESH_URL.format(first)
    if first.upper().startswith("OMIM:"):
        return OMIM_URL.format(first.split(":", 1)[1])
    return None


def displacy_ents(doc: Doc, spans_key: Optional[str] = None) -> Dict[str, Any]:
    """displaCy's manual "ent" (or, with `spans_key`, "span") data for `doc`, with concept links."""
    spans = doc.spans[spans_key] if spans_key else doc.ents
    items: List[Dict[str, Any]] = []
    for span in spans:
        item: Dict[str, Any] = {"start": span.start_char, "end": span.end_char, "label": span.label_}
        if span.kb_id_ and split_kb_id(span.kb_id_):
            item["kb_id"] = span.kb_id_
            item["kb_url"] = concept_url(span.kb_id_) or "#"
        if spans_key:
            item = {"start_token": span.start, "end_token": span.end, **item}
        items.append(item)
    data: Dict[str, Any] = {"text": doc.text, "title": None}
    if spans_key:
        data.update({"spans": items, "tokens": [t.text for t in doc]})
    else:
        data["ents"] = items
    return data


def render(docs: Union[Doc, Iterable[Doc]], *, spans_key: Optional[str] = None, **kwargs) -> str:
    """HTML of `docs` with every linked entity pointing at its record (kwargs go to displacy.render)."""
    docs = [docs] if isinstance(docs, Doc) else list(docs)
    style = "span" if spans_key else "ent"
    return displacy.render([displacy_ents(d, spans_key) for d in docs], style=style, manual=True, **kwargs)
