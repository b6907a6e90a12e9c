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

A short form used without its definition ("DEN" in a text that names
diethylnitrosamine earlier, no parentheses) is not found by the detector;
`abbreviates` is the same test for two strings, which the candidate ranker
applies to a short form and the other mentions of its document.
"""
import warnings
from functools import lru_cache
from typing import Dict, List, Tuple

from spacy.tokens import Doc, Span
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


def abbreviation_spans(doc: Doc) -> List[Tuple[Span, List[Span]]]:
    """The abbreviations defined in `doc`: (long form, its short forms' spans).

    The short forms are every occurrence the detector found in the doc, the
    one in brackets included; the long form is the span in the definition."""
    from scispacy.abbreviation import filter_matches

    detector = get_detector(doc.vocab)
    matches = detector.matcher(doc)  # type: ignore[attr-defined]
    inside_brackets = [(m, start + 1, end - 1) for m, start, end in matches]
    candidates = filter_matches(inside_brackets, doc)
    with warnings.catch_warnings():
        # W036: the detector's global matcher is empty when nothing was found
        warnings.filterwarnings("ignore", message=r"\[W036\]")
        found = detector.find_matches_for(candidates, doc)  # type: ignore[attr-defined]
    return [(long_form, sorted(short_forms, key=lambda span: span.start)) for long_form, short_forms in found]


def abbreviation_map(doc: Doc) -> Dict[str, str]:
    """Short form text → long form text for the abbreviations defined in `doc`."""
    out: Dict[str, str] = {}
    for long_form, short_forms in abbreviation_spans(doc):
        for short in short_forms:
            if short.text != long_form.text:
                out.setdefault(short.text, long_form.text)
    return out


def is_short_form(text: str) -> bool:
    """A mention that may abbreviate another: one word of at most 10 characters with a capital."""
    return 0 < len(text) <= 10 and not any(ch.isspace() for ch in text) and any(ch.isupper() for ch in text)


@lru_cache(maxsize=200_000)
def abbreviates(short: str, long: str) -> bool:
    """Whether `short` abbreviates the whole of `long`: Schwartz & Hearst's test
    (the short form's letters and digits in order in the long form, matched from
    the right), anchored so that its first character is the long form's first.
    scispacy's `find_abbreviation` runs the same test on the spans of one
    doc and finds where the long form starts; here both are strings (KB names
    too) and the long form must start where the name does. Remembered: the
    ranker asks for the same pairs when it expands and when it scores."""
    chars = [ch.lower() for ch in short if ch.isalnum()]
    low = long.lower()
    if not chars or len(low) <= len(short):
        return False
    first = next((i for i, ch in enumerate(low) if ch.isalnum()), None)
    if first is None or low[first] != chars[0]:
        return False
    j = len(low) - 1
    for ch in reversed(chars[1:]):
        while j > first and low[j] != ch:
            j -= 1
        if j <= first:
            return False
        j -= 1
    return True
