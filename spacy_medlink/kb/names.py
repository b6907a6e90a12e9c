"""Names as the KB layer matches them: the normalized key of a name or a mention,
and a candidate concept found by its name.

Every part of the KB layer (the candidate index, the ranker, the training-split
statistics, the dictionaries) reads these two, so they live apart from all of them.
"""
import re
import unicodedata
from typing import NamedTuple


class Candidate(NamedTuple):
    concept_id: str
    score: float
    name: str  # the KB name that matched


_POSSESSIVE = re.compile(r"(?<=\w)['’]s\b")
_NON_ALNUM = re.compile(r"[\W_]+")


def normalize_name(text: str, mode: str = "full") -> str:
    """The key names and mentions are matched on.

    "lower": Unicode NFKC + casefold + whitespace collapsed. "full" also drops
    possessive 's ("Crohn's disease" = "Crohn disease") and turns every run of
    punctuation into one space ("non-small-cell" = "non small cell").
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    if mode == "full":
        text = _POSSESSIVE.sub("", text)
        text = _NON_ALNUM.sub(" ", text)
    elif mode != "lower":
        raise ValueError(f"Unknown normalization {mode!r} (expected 'lower' or 'full')")
    return " ".join(text.split())
