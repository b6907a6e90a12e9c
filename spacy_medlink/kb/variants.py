"""Spelling and naming variants of a mention, queried beside it when the KB's ranker asks for them.

MeSH and MEDIC spell the American way and name acids, not their salts, and
neoplasms, not tumors; biomedical text does not ("oedema", "anaemia",
"oestrogen", "sulphate", "metrizoate", "kainate", "liver tumours"). The
character n-gram generator finds such a mention's concept only when the
variant is close in n-grams, and then not as an exact name. Each rule below
rewrites the whole lowercased mention once; a mention no rule applies to has
no variants, so most mentions cost nothing more.
"""
import re
from functools import lru_cache
from typing import List, Tuple

RULES: Tuple[Tuple[str, str], ...] = (
    (r"oe", "e"),  # oedema, oestrogen, diarrhoea
    (r"ae", "e"),  # anaemia, haemorrhage, leukaemia
    (r"sulph", "sulf"),
    (r"isation\b", "ization"),
    (r"our(s?)\b", r"or\1"),  # tumour(s)
    (r"ates?$", "ic acid"),  # metrizoate, kainate: MeSH names the acid
    (r"ic acids?$", "ate"),
    (r"\btumou?rs\b", "neoplasms"),  # MeSH's heading for tumors
    (r"\btumou?r\b", "neoplasm"),
)
_COMPILED = tuple((re.compile(pattern), repl) for pattern, repl in RULES)


def spelling_variants(text: str) -> List[str]:
    """The distinct rewrites of `text` (lowercased) by each rule, in rule order; [] if none applies."""
    return list(_variants(text))


@lru_cache(maxsize=200_000)
def _variants(text: str) -> Tuple[str, ...]:
    """Remembered: the lookup queries a mention's variants and the ranker scores against them."""
    low = text.lower()
    out: List[str] = []
    for pattern, repl in _COMPILED:
        variant = pattern.sub(repl, low)
        if variant != low and variant not in out:
            out.append(variant)
    return tuple(out)
