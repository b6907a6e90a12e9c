"""Short forms defined in a document ("familial Mediterranean fever (FMF)").

A mention "FMF" is hard to link from its own letters; its long form is easy.
`abbreviation_map` runs scispacy's Schwartz & Hearst detector
(`scispacy.abbreviation.AbbreviationDetector`) on a Doc and returns, for that
Doc, short form text → long form text.

The detector only needs token boundaries (a Matcher over "(" ... ")"): no
parser, tagger or sentence boundaries. We call its matching steps directly
instead of `detector(doc)`, so no Doc/Span extension is written.

How a linker uses it::

    abbrevs = abbreviation_map(doc)
    for ent in doc.ents:
        long_form = abbrevs.get(ent.text)
        queries = [long_form, ent.text] if long_form else [ent.text]
        # look up the long form first; fall back to the short form if the
        # long form has no candidates (or score the union of both lists)
"""
import warnings
from typing import Dict

from spacy.tokens import Doc
from spacy.vocab import Vocab

_DETECTORS: Dict[int, object] = {}


class _VocabHolder:
    """What AbbreviationDetector reads from `nlp`: only `.vocab`."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab


def get_detector(vocab: Vocab):
    """One scispacy AbbreviationDetector per vocab, made on first use (cheap: two Matchers)."""
    from scispacy.abbreviation import AbbreviationDetector

    key = id(vocab)
    detector = _DETECTORS.get(key)
    if detector is None or detector.matcher.vocab is not vocab:  # type: ignore[attr-defined]
        detector = AbbreviationDetector(_VocabHolder(vocab))  # type: ignore[arg-type]
        _DETECTORS[key] = detector
    return detector


def abbreviation_map(doc: Doc) -> Dict[str, str]:
    """Short form text → long form text for the abbreviations defined in `doc`."""
    from scispacy.abbreviation import filter_matches

    detector = get_detector(doc.vocab)
    matches = detector.matcher(doc)  # type: ignore[attr-defined]
    inside_brackets = [(m, start + 1, end - 1) for m, start, end in matches]
    candidates = filter_matches(inside_brackets, doc)
    out: Dict[str, str] = {}
    with warnings.catch_warnings():
        # W036: the detector's global matcher is empty when nothing was found
        warnings.filterwarnings("ignore", message=r"\[W036\]")
        found = detector.find_matches_for(candidates, doc)  # type: ignore[attr-defined]
    for long_form, short_forms in found:
        for short in short_forms:
            if short.text != long_form.text:
                out.setdefault(short.text, long_form.text)
    return out
