"""medlink_coordinations: a coordinated mention is one entity, as NCBI annotates it.

NCBI Disease annotates "classical and Duarte galactosemia" and "brain, breast,
and prostate cancer" as one mention each (a composite, with the conjuncts'
IDs). A tagger reads the head ("Duarte galactosemia", "prostate cancer") and
leaves the conjuncts out. This component, placed after the recognizer,
extends an entity to the left over "W and" / "W or" and over a comma list
"W, V, and", where each W is a word that begins multi-word mentions in the
training split (`min_count` times or more), so "patients and tumors" stays
as it was. The extended entity keeps its label, concept and medlink values.

`initialize` reads the word list from the training examples; it is saved
beside the pipeline as JSON. `python -m spacy_medlink tune coordinations`
adds it to a trained pipeline and decides on dev whether it stays on.
Measured in metrics/joint/coordinations/ (docs/results.md#joint).
"""
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Set

import srsly
from spacy import util
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example

from ._rule_pipe import RulePipe
from .extensions import entity_like

CONJUNCTIONS = ("and", "or")


@Language.factory(
    "medlink_coordinations",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    requires=["doc.ents"],
    default_config={"extend": True, "min_count": 2, "scorer": {"@scorers": "spacy.ner_scorer.v1"}},
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_coordinations(nlp: Language, name: str, extend: bool, min_count: int,
                       scorer: Optional[Callable]) -> "Coordinations":
    """Extend entities over the conjuncts before them.

    extend (bool): whether to extend (off: the pipe changes nothing; `tune` compares the two).
    min_count (int): how often a word must begin a multi-word training mention to count as a conjunct.
    scorer (Optional[Callable]): scores doc.ents; NER only (the recognizer's scorer scores NEN).
    """
    return Coordinations(nlp.vocab, name, extend=extend, min_count=min_count, scorer=scorer)


class Coordinations(RulePipe):
    """The word list comes from the training split at `initialize` and is saved as JSON."""

    def __init__(self, vocab, name: str = "coordinations", *, extend: bool = True, min_count: int = 2,
                 scorer: Optional[Callable] = None) -> None:
        super().__init__(vocab, name, {"extend": extend, "min_count": min_count}, scorer)
        self.words: Set[str] = set()

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None) -> None:
        counts = Counter(ent[0].lower_ for eg in get_examples() for ent in eg.reference.ents if len(ent) > 1)
        self.words = {word for word, n in counts.items() if n >= self.cfg["min_count"] and word.isalpha()}

    def predict(self, docs: Iterable[Doc]) -> None:
        return None

    def set_annotations(self, docs: Iterable[Doc], scores: None) -> None:
        if not self.cfg["extend"]:
            return
        for doc in docs:
            doc.ents = extend_coordinations(doc, self.words)

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return srsly.msgpack_dumps({"words": sorted(self.words)})

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "Coordinations":
        self.words = set(srsly.msgpack_loads(bytes_data)["words"])
        return self

    def to_disk(self, path, *, exclude=tuple()) -> None:
        util.to_disk(path, {"words.json": lambda p: srsly.write_json(p, sorted(self.words))}, exclude)

    def from_disk(self, path, *, exclude=tuple()) -> "Coordinations":
        def load(p: Path) -> None:
            if not p.exists():
                raise ValueError(f"{p} is missing: the {self.name} pipe was saved without its word list")
            self.words = set(srsly.read_json(p))

        util.from_disk(path, {"words.json": load}, exclude)
        return self


def extend_coordinations(doc: Doc, words: Set[str]) -> List[Span]:
    """doc.ents, each extended to the left over the conjuncts in `words` before it."""
    ents = list(doc.ents)
    taken = {i for ent in ents for i in range(ent.start, ent.end)}
    out = []
    for ent in ents:
        start = _conjuncts_start(doc, ent.start, words, taken)
        out.append(ent if start == ent.start else entity_like(doc[start:ent.end], ent))
    return out


def _conjuncts_start(doc: Doc, start: int, words: Set[str], taken: Set[int]) -> int:
    """Where "W, V, and <entity>" begins: `start` if no conjunct of `words` precedes it."""
    i = start - 1
    if i < 1 or doc[i].lower_ not in CONJUNCTIONS:
        return start
    i -= 1
    if doc[i].text == "," and i > 0:  # "W, and"
        i -= 1
    first = start
    while i >= 0 and i not in taken and doc[i].lower_ in words:
        first = i
        if i >= 2 and doc[i - 1].text == "," and i - 2 not in taken:
            i -= 2
        else:
            break
    return first
