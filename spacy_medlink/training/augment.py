"""Mention replacement: training examples whose gold mentions are swapped for
other names from the KB, so that recognition does not hinge on having seen
the exact string.

A model trained on one corpus learns its mention strings; on other text most
names are new. With probability `level` an example is replaced by a copy in
which each linked mention (probability `mention_prob`) becomes another name:
a synonym of its own concept (probability `same_concept`; the concept ID, and
so the normalization target, stays) or any name of a random KB concept of the
same type (the ID becomes that concept's). Names are then varied in case and
hyphenation as text writes them. Partially annotated references (see
`corpora.partial`) are passed through unchanged: their open tokens and
outside spans are offsets that a rewrite would have to move.
"""
import random
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from ..corpora.partial import ANNOTATED_KEY, OUTSIDE_KEY

MAX_NAME_CHARS = 60


@registry.augmenters("medlink.mention_replacement.v1")
def create_mention_replacement(
    kb_path: str,
    level: float = 0.3,
    mention_prob: float = 0.5,
    same_concept: float = 0.5,
    variant_prob: float = 0.2,
    seed: Optional[int] = None,
) -> Callable[[Language, Example], Iterator[Example]]:
    """Registered as ``medlink.mention_replacement.v1`` (setup.cfg entry point)."""
    return MentionReplacement(Path(kb_path), level=level, mention_prob=mention_prob,
                              same_concept=same_concept, variant_prob=variant_prob, seed=seed)


class MentionReplacement:
    def __init__(self, kb_path: Path, *, level: float, mention_prob: float, same_concept: float,
                 variant_prob: float, seed: Optional[int] = None):
        for name, value in (("level", level), ("mention_prob", mention_prob), ("same_concept", same_concept),
                            ("variant_prob", variant_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], not {value}")
        self.kb_path = kb_path
        self.level = level
        self.mention_prob = mention_prob
        self.same_concept = same_concept
        self.variant_prob = variant_prob
        # no seed: one drawn from the global generator, which `spacy train` seeds
        # ([training] seed) before it builds the corpora, so a run repeats
        self.random = random.Random(random.getrandbits(64) if seed is None else seed)
        self._kb = None
        self._by_type: Dict[str, List[int]] = {}

    @property
    def kb(self):
        """The KB, loaded (memory-mapped) on first use: a config that names
        the augmenter but is only inspected never reads it."""
        if self._kb is None:
            from ..kb.concept_kb import ConceptKB

            self._kb = ConceptKB.load(self.kb_path)
            for row, cid in enumerate(self._kb.concept_ids):
                for type_ in self._kb.types_of(cid):
                    self._by_type.setdefault(type_, []).append(row)
        return self._kb

    def __call__(self, nlp: Language, example: Example) -> Iterator[Example]:
        ref = example.reference
        if (self.level == 0.0 or self.random.random() >= self.level or ANNOTATED_KEY in ref.user_data
                or OUTSIDE_KEY in ref.spans or not len(ref.ents)):
            yield example
            return
        yield self.replace(nlp, ref)

    def replace(self, nlp: Language, ref: Doc) -> Example:
        """An Example of `ref` with some linked mentions renamed."""
        pieces: List[str] = []
        ents: List[Tuple[int, int, str, str]] = []
        cursor = 0
        for ent in ref.ents:
            pieces.append(ref.text[cursor:ent.start_char])
            start = sum(len(p) for p in pieces)
            name, kb_id = ent.text, ent.kb_id_
            if kb_id and self.random.random() < self.mention_prob:
                name, kb_id = self._new_name(ent.text, kb_id, ent.label_)
            pieces.append(name)
            ents.append((start, start + len(name), ent.label_, kb_id))
            cursor = ent.end_char
        pieces.append(ref.text[cursor:])
        doc = nlp.make_doc("".join(pieces))
        spans = [doc.char_span(s, e, label=label, kb_id=kb_id, alignment_mode="expand") for s, e, label, kb_id in ents]
        if any(span is None or not len(span) for span in spans):
            # a gold mention that no longer aligns would become outside: keep the original
            return Example(nlp.make_doc(ref.text), ref)
        from spacy.util import filter_spans

        doc.ents = filter_spans(spans)
        doc.user_data.update({k: v for k, v in ref.user_data.items() if k == "doc_id"})
        predicted = nlp.make_doc(doc.text)
        return Example(predicted, doc)

    def _new_name(self, text: str, kb_id: str, label: str) -> Tuple[str, str]:
        kb = self.kb
        cid = kb_id.split("|")[0]
        if self.random.random() < self.same_concept and cid in kb:
            names = [n for n in _names(kb, kb.resolve(cid)) if n.lower() != text.lower() and len(n) <= MAX_NAME_CHARS]
            if names:
                return self._vary(self.random.choice(names)), kb_id
        rows = self._by_type.get(label)
        if not rows:
            return text, kb_id
        row = self.random.choice(rows)
        other = kb.concept_ids[row]
        names = [n for n in _names(kb, other) if len(n) <= MAX_NAME_CHARS]
        if not names:
            return text, kb_id
        return self._vary(self.random.choice(names)), other

    def _vary(self, name: str) -> str:
        """Case and hyphenation as running text writes a name."""
        if self.random.random() >= self.variant_prob:
            return name
        choice = self.random.randrange(4)
        if choice == 0:
            return name.lower()
        if choice == 1:
            return name[:1].upper() + name[1:]
        if choice == 2 and "-" in name:
            return name.replace("-", " ")
        if choice == 3 and " " in name:
            return name.replace(" ", "-", 1)
        return name


def _names(kb, concept_id: str) -> List[str]:
    concept = kb[concept_id]
    # MeSH entry terms are often inverted ("Anemia, Hemolytic"): text rarely writes them so
    return [n for n in (concept.name, *concept.synonyms) if ", " not in n]
