"""How a training split links mention strings to concepts: the statistics the
candidate ranker (`kb.ranker`) and the exact-match dictionary (`kb.dictionary`)
read, with each document's own share so that a training mention's features can
leave its document out."""
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

from .names import normalize_name
from ..ids import split_kb_id

if TYPE_CHECKING:
    from spacy.tokens import Doc


class MentionStats:
    """How a training split links mention strings: counts per (normalized string, concept).

    Per-document counts are kept while counting so that a training mention's
    features can leave its own document out (`without`).
    """

    def __init__(self) -> None:
        self.key_concepts: Dict[str, Counter] = defaultdict(Counter)
        self.key_totals: Counter = Counter()  # key -> its count over all concepts
        self.concepts: Counter = Counter()
        # key -> how often the split annotates it with several concepts (a composite);
        # kept apart so the single-concept counts that the ranker's features read stay as they are
        self.composites: Counter = Counter()
        self._ranked: Dict[str, List[str]] = {}  # key -> concepts, most often first (cleared on add)

    def add(self, key: str, concept_id: str, n: int = 1) -> None:
        self.key_concepts[key][concept_id] += n
        self.key_totals[key] += n
        self.concepts[concept_id] += n
        self._ranked.clear()

    def counts(self, key: str, concept_id: str, own: Optional["MentionStats"] = None) -> Tuple[int, int, int]:
        """(count of key with concept, count of key, count of concept), minus `own`."""
        kc = self.key_concepts.get(key)
        pair = kc.get(concept_id, 0) if kc else 0
        total = self.key_totals[key] if kc else 0
        concept = self.concepts.get(concept_id, 0)
        if own is not None:
            okc = own.key_concepts.get(key)
            if okc:
                pair -= okc.get(concept_id, 0)
                total -= own.key_totals[key]
            concept -= own.concepts.get(concept_id, 0)
        return pair, total, concept

    def concepts_of(self, key: str, own: Optional["MentionStats"] = None) -> List[str]:
        """The concepts the split links `key` to, most often first, minus `own`."""
        kc = self.key_concepts.get(key)
        if not kc:
            return []
        if own is None:
            if key not in self._ranked:
                self._ranked[key] = [cid for cid, _ in kc.most_common()]
            return self._ranked[key]
        okc = own.key_concepts.get(key)
        counts = [(cid, n - (okc[cid] if okc else 0)) for cid, n in kc.most_common()]
        return [cid for cid, n in counts if n > 0]

    def add_composite(self, key: str, n: int = 1) -> None:
        self.composites[key] += n

    def composite_vote(self, key: str) -> Optional[bool]:
        """Whether the split annotates `key` as a composite more often than as one
        concept; None where it never annotates `key` or has no majority."""
        single, multi = self.key_totals.get(key, 0), self.composites.get(key, 0)
        return None if single == multi else multi > single

    def best(self, key: str) -> Optional[str]:
        """The concept the split links `key` to most often (first seen among ties)."""
        kc = self.key_concepts.get(key)
        return kc.most_common(1)[0][0] if kc else None

    def to_dict(self) -> Dict[str, Any]:
        return {"key_concepts": {k: dict(v) for k, v in self.key_concepts.items()}, "composites": dict(self.composites)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "MentionStats":
        self = cls()
        for key, concepts in data["key_concepts"].items():
            for cid, n in concepts.items():
                self.add(key, cid, n)
        for key, n in data.get("composites", {}).items():  # absent before 0.6.0's rankers
            self.add_composite(key, n)
        return self


def gold_atoms(kb_id: str, resolve) -> Tuple[str, ...]:
    return tuple(resolve(a) for a in split_kb_id(kb_id))


def split_stats(docs: Iterable["Doc"], resolve) -> Tuple[MentionStats, List[MentionStats]]:
    """The split's statistics over single-concept gold mentions (the ones the
    KB builder adds as synonyms), with its composite mentions counted per string
    apart from them, and each doc's own share."""
    from .builders import mention_spans

    total = MentionStats()
    per_doc = []
    for doc in docs:
        own = MentionStats()
        for span in mention_spans(doc):
            atoms = gold_atoms(span.kb_id_, resolve)
            key = normalize_name(span.text)
            if len(atoms) == 1:
                own.add(key, atoms[0])
                total.add(key, atoms[0])
            elif len(atoms) > 1:
                own.add_composite(key)
                total.add_composite(key)
        per_doc.append(own)
    return total, per_doc
