"""medlink_abbreviations: a short form is an entity exactly when its long form is.

An author who writes "autosomal recessive CHD (AR-CHD)" has said what AR-CHD
means, and the corpora annotate it so: every use of the short form gets the
long form's label and concept. A tagger sees the short form alone ("AR-CHD
was found in ...") and misses it, or tags a gene's short form ("lipoma
preferred partner (LPP)") as a disease. This component, placed after the
pipe that writes ``doc.ents`` (any recognizer, spaCy's ``ner`` included),
makes the two agree, using the abbreviations the document defines
(`kb.abbreviations.abbreviation_spans`, scispacy's Schwartz & Hearst detector):

* ``add_short_forms``: where an entity is the long form, each occurrence of
  the short form that no entity overlaps becomes an entity with that
  entity's label, ``kb_id`` and ``span._.medlink_*`` values. With
  ``exact_long_form`` off, an entity that covers the long form and ends with
  it counts too ("hereditary breast cancer" for "breast cancer (BC)"), which
  also takes "deficiency of arylsulfatase A (ARSA)" to tag the enzyme's
  short form; dev chooses per corpus. An entity that only ends the long form
  ("colorectal cancer" in "deleted in colorectal cancer (DCC)") says nothing
  about the short form.
* ``remove_short_forms``: where no entity overlaps the long form, entities
  whose text is the short form are removed.

Measured in metrics/joint/abbreviations/ (docs/results.md#joint). `python -m spacy_medlink tune
abbreviations` adds it to a trained pipeline and chooses the settings on dev.
"""
from typing import Callable, Iterable, List, Optional, Sequence, Set, Tuple

from spacy.language import Language
from spacy.tokens import Doc, Span

from ..kb.abbreviations import abbreviation_spans
from ._rule_pipe import RulePipe
from .extensions import entity_like

# per doc: (long form start, end) and its short forms' (start, end)
Definitions = List[Tuple[Tuple[int, int], List[Tuple[int, int]]]]


@Language.factory(
    "medlink_abbreviations",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "span._.medlink_score", "span._.medlink_candidates"],
    requires=["doc.ents"],
    default_config={
        "add_short_forms": True,
        "remove_short_forms": True,
        "exact_long_form": False,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_abbreviations(
    nlp: Language,
    name: str,
    add_short_forms: bool,
    remove_short_forms: bool,
    exact_long_form: bool,
    scorer: Optional[Callable],
) -> "AbbreviationAgreement":
    """Make a document's short forms agree with their long forms in doc.ents.

    add_short_forms (bool): tag a short form like the entity that covers its long form.
    remove_short_forms (bool): untag a short form whose long form is in no entity.
    exact_long_form (bool): only an entity that is exactly the long form tags its short form.
    scorer (Optional[Callable]): scores doc.ents; NER only, as the recognizer's scorer
        resolves concept IDs through its KB and scores NEN on the final docs.
    """
    return AbbreviationAgreement(nlp.vocab, name, add_short_forms=add_short_forms,
                                 remove_short_forms=remove_short_forms, exact_long_form=exact_long_form,
                                 scorer=scorer)


class AbbreviationAgreement(RulePipe):
    """No weights and nothing to save: the config holds its settings. `predict`
    finds the definitions and `set_annotations` applies the settings, so `tune`
    sweeps them without running the detector once per setting."""

    def __init__(self, vocab, name: str = "abbreviations", *, add_short_forms: bool = True,
                 remove_short_forms: bool = True, exact_long_form: bool = False,
                 scorer: Optional[Callable] = None) -> None:
        super().__init__(vocab, name, {"add_short_forms": add_short_forms, "remove_short_forms": remove_short_forms,
                                       "exact_long_form": exact_long_form}, scorer)

    def predict(self, docs: Iterable[Doc]) -> List[Definitions]:
        return [[((long.start, long.end), [(s.start, s.end) for s in shorts])
                 for long, shorts in abbreviation_spans(doc)] for doc in docs]

    def set_annotations(self, docs: Iterable[Doc], definitions: Sequence[Definitions]) -> None:
        for doc, defs in zip(docs, definitions):
            doc.ents = agree(doc, defs, add=self.cfg["add_short_forms"], remove=self.cfg["remove_short_forms"],
                             exact=self.cfg["exact_long_form"])


def agree(doc: Doc, definitions: Definitions, *, add: bool = True, remove: bool = True,
          exact: bool = False) -> List[Span]:
    """doc.ents with the short forms of `definitions` made to agree with their long forms.

    The recognizer's entities decide for every definition (what one definition
    adds or removes does not change another's decision, so the order of the
    definitions does not matter). A use of a short form that is part of a
    longer word ("CHD" in "AR-CHD") or lies inside a long form is no use."""
    found = list(doc.ents)
    long_forms = [span for span, _ in definitions]
    added: List[Span] = []
    removed: Set[str] = set()
    for (long_start, long_end), shorts in definitions:
        overlaps = [e for e in found if e.start < long_end and long_start < e.end]
        covering = next((e for e in overlaps if e.end == long_end
                         and (e.start == long_start if exact else e.start <= long_start)), None)
        if add and covering is not None:
            for start, end in shorts:
                if _glued(doc, start, end) or any(s <= start and end <= e for s, e in long_forms):
                    continue
                if not any(e.start < end and start < e.end for e in found + added):
                    added.append(entity_like(doc[start:end], covering))
        elif remove and not overlaps:
            removed.update(doc[start:end].text for start, end in shorts)
    return sorted([e for e in found if e.text not in removed] + added, key=lambda e: e.start)


def _glued(doc: Doc, start: int, end: int) -> bool:
    """Whether doc[start:end] is written together with a letter, digit or hyphen before or after it."""
    before = start > 0 and not doc[start - 1].whitespace_ and _joins(doc[start - 1].text[-1])
    after = end < len(doc) and not doc[end - 1].whitespace_ and _joins(doc[end].text[0])
    return before or after


def _joins(char: str) -> bool:
    return char.isalnum() or char == "-"
