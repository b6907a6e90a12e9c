"""The exact-match dictionary: the linking peer every component must beat.

A mention gets the concept the training split linked its exact (normalized)
string to most often; failing that, the concept of a KB name that equals it
(or its long form defined in the document), preferred names first and
restricted to the mention's type; failing both, no concept. It never guesses,
which is why its normalization precision is high: a learned linker earns its
place only by keeping that precision while recalling more.
"""
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

from .names import normalize_name
from .mention_stats import MentionStats

if TYPE_CHECKING:
    from spacy.tokens import Span

    from .candidates import CandidateGenerator


class ExactDictionary:
    def __init__(self, generator: "CandidateGenerator", stats: MentionStats,
                 type_map: Optional[Dict[str, str]] = None) -> None:
        self.generator = generator
        self.stats = stats
        self.type_map = dict(type_map or {})

    def __call__(self, spans: Sequence["Span"], long_forms: Sequence[Optional[str]]) -> List[str]:
        """One concept ID (or "") per span."""
        out: List[Optional[str]] = []
        queries, owners, types = [], [], []
        for i, (span, lf) in enumerate(zip(spans, long_forms)):
            type_ = self.type_map.get(span.label_, span.label_)
            found = None
            for text in (span.text, lf):
                best = self.stats.best(normalize_name(text)) if text else None
                if best and self._type_ok(best, type_):
                    found = best
                    break
            out.append(found)
            if found is None:
                for text in (span.text, lf):
                    if text:
                        queries.append(text)
                        owners.append(i)
                        types.append(type_)
        if queries:
            for i, text, cands in zip(owners, queries, self.generator(queries, k=1, types=types)):
                if out[i] is None and cands and normalize_name(cands[0].name) == normalize_name(text):
                    out[i] = cands[0].concept_id
        return [cid or "" for cid in out]

    def _type_ok(self, concept_id: str, type_: str) -> bool:
        """A training-split concept fits unless the KB types it as something else."""
        kb = self.generator.kb
        if concept_id not in kb or type_ not in self.generator.types:
            return True
        types = kb.types_of(concept_id)
        return not types or type_ in types
