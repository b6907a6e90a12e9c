"""Spelling and naming variants of a mention, queried beside it when the KB's ranker asks for them.

MeSH and MEDIC spell the American way and name acids, not their salts, and
neoplasms, not tumors; biomedical text does not ("oedema", "anaemia",
"oestrogen", "sulphate", "metrizoate", "kainate", "liver tumours"). The
character n-gram generator finds such a mention's concept only when the
variant is close in n-grams, and then not as an exact name. Each rule below
rewrites the whole lowercased mention once; a mention no rule applies to has
no variants, so most mentions cost nothing more.

The rules come in named sets, one ranker feature each, so that a ranker
trained before a set existed keeps its candidates and features: "spelling"
(`exact_variant`) and "cancer" (`exact_cancer`: "prostate carcinoma",
"prostatic adenocarcinoma", whose MeSH heading is the organ's neoplasms and
whose names say "cancer", never "carcinoma").
"""
import re
from functools import lru_cache
from typing import Dict, List, Sequence, Tuple

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
CANCER_RULES: Tuple[Tuple[str, str], ...] = (
    (r"\b(?:adeno)?carcinomas\b", "cancers"),
    (r"\b(?:adeno)?carcinoma\b", "cancer"),
)
RULE_SETS: Dict[str, Tuple[Tuple[str, str], ...]] = {"spelling": RULES, "cancer": CANCER_RULES}
_COMPILED = {name: tuple((re.compile(pattern), repl) for pattern, repl in rules) for name, rules in RULE_SETS.items()}


def spelling_variants(text: str, rule_set: str = "spelling") -> List[str]:
    """The distinct rewrites of `text` (lowercased) by each rule of the set, in rule order; [] if none applies."""
    return list(_variants(text, rule_set))


def query_variants(text: str, rule_sets: Sequence[str]) -> List[str]:
    """The distinct variants of `text` under each of `rule_sets`, in order: what the generator is also asked."""
    out: List[str] = []
    for name in rule_sets:
        for variant in _variants(text, name):
            if variant not in out:
                out.append(variant)
    return out


@lru_cache(maxsize=200_000)
def _variants(text: str, rule_set: str) -> Tuple[str, ...]:
    """Remembered: the lookup queries a mention's variants and the ranker scores against them."""
    low = text.lower()
    out: List[str] = []
    for pattern, repl in _COMPILED[rule_set]:
        variant = pattern.sub(repl, low)
        if variant != low and variant not in out:
            out.append(variant)
    return tuple(out)
