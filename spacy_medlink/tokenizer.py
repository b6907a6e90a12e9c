"""A tokenizer whose token boundaries fall where biomedical mention boundaries do.

spaCy's English tokenizer keeps "(CYP)-induced", "Na+/K+", "xenon-133" and
"vitamin D." as single tokens, so a gold mention such as "CYP", "K" or
"vitamin D" cannot be a span of tokens (1.4% of BC5CDR mentions). The extra
rules below are driven by those misaligned mentions: split brackets, "+" and
"/" inside words, hyphens next to anything that is not a hyphen, and a final
period after a capital letter. spaCy's defaults stay underneath, so ordinary
prose tokenizes as before.

The rules are plain regex patterns on a `spacy.tokenizer.Tokenizer`; they are
written to disk by `nlp.to_disk` and restored by `Tokenizer.from_disk`, so a
saved pipeline loads without this package knowing anything about them.
"""
import re
from typing import Callable, Dict, List

import spacy
from scispacy.consts import ABBREVIATIONS
from spacy.lang.char_classes import ALPHA, ALPHA_LOWER, ALPHA_UPPER
from spacy.lang.tokenizer_exceptions import emoticons
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex

# Hyphen and dash characters, as a character class body.
_H = r"\-\u2010-\u2015"

# Splits inside a token (after prefixes and suffixes are stripped).
BIOMED_INFIXES: List[str] = [
    # "(CYP)-induced", "K(Na)", "[Na]o", "A(1)-adenosine", "peptide(1-42)"
    r"[()\[\]{}]",
    # "Na+-K+", "Ca+2", "GSPE+drug"; "2+" stays whole only at a token's end (suffix)
    r"(?<=\S)\+(?=\S)",
    # "Na+/K+", "mg/kg" (spaCy only splits "/" between letters)
    r"/",
    # "lithium=0.85", "ALF=0/35", "P<0.01" (spaCy wants a letter after these)
    r"(?<=\S)[=<>](?=\S)",
    # "glucose.4.", "myoglobinuria.(ABSTRACT": a sentence end with no space
    r"(?<=[{al}])\.(?=[0-9(\[])".format(al=ALPHA_LOWER),
    # "xenon-133", "thallium-201", "CYP)-induced", "encephalopathy--19":
    # any run of hyphens inside a token, not just letter-hyphen-letter
    r"(?<=[^\s{h}])[{h}]+(?=[^\s{h}])".format(h=_H),
]

# Split off the start of a token.
BIOMED_PREFIXES: List[str] = [
    # "(+)-propranolol", "-Tacrolimus": a hyphen left after "(+)" or a stray dash
    r"[{h}]+(?=[{a}])".format(a=ALPHA, h=_H),
]

# Split off the end of a token.
BIOMED_SUFFIXES: List[str] = [
    # "vitamin D.", "type I.", "AmB." (spaCy wants two capitals before the period)
    # but not "U.S.", whose final period belongs to the abbreviation
    r"(?<!\.[{au}])(?<=[{au}])\.".format(au=ALPHA_UPPER),
    # "digitalis- and adrenaline-", "HBsAg- positive"
    r"(?<=[{a}0-9)\]])[{h}]+".format(a=ALPHA, h=_H),
    # "Na+", "K+": spaCy only splits "+" after a digit
    r"(?<=[{a}])\+".format(a=ALPHA),
    # "Ca2+", "Mg2+": the charge of an ion, so that "Ca" is a token ("CD4+" stays)
    r"(?<=[{au}][{al}])[0-9]+[+\-]".format(au=ALPHA_UPPER, al=ALPHA_LOWER),
]

# spaCy's exceptions keep "8)", "8D", "0.0" (emoticons) and "Co.", "Mo.", "Ga.",
# "Ia.", "d." (US states, titles, list items) whole. In biomedical text these
# are "(n = 8)", element symbols and subtypes ending a sentence ("type Ia.").
_LETTER_ABBREVIATION = re.compile(r"^(?:[A-Z][a-z]?|[a-z])\.$")
_KEEP_ABBREVIATIONS = {"Dr.", "Mr.", "Ms.", "Jr.", "St.", "Mt."}


def biomed_exceptions(defaults: Dict[str, List[dict]]) -> Dict[str, List[dict]]:
    """The language's tokenizer exceptions, adapted to biomedical text."""
    rules = {
        key: value
        for key, value in defaults.items()
        if key not in emoticons
        and (not _LETTER_ABBREVIATION.match(key) or key in _KEEP_ABBREVIATIONS)
    }
    # scispacy's abbreviations keep their period: "Fig.", "al.", "sp.", ...
    for abbreviation in ABBREVIATIONS:
        rules.setdefault(abbreviation, [{"ORTH": abbreviation}])
    return rules


def create_biomed_tokenizer() -> Callable[[Language], Tokenizer]:
    """Registered as "medlink.BiomedTokenizer.v1" (setup.cfg entry point).

    Like "spacy.Tokenizer.v1", returns a factory that builds the tokenizer for
    an `nlp` object: the language's defaults plus the biomedical rules above.
    """

    def biomed_tokenizer_factory(nlp: Language) -> Tokenizer:
        defaults = nlp.Defaults
        prefixes = BIOMED_PREFIXES + list(defaults.prefixes or [])
        suffixes = BIOMED_SUFFIXES + list(defaults.suffixes or [])
        infixes = BIOMED_INFIXES + list(defaults.infixes or [])
        return Tokenizer(
            nlp.vocab,
            rules=biomed_exceptions(defaults.tokenizer_exceptions),
            prefix_search=compile_prefix_regex(prefixes).search,
            suffix_search=compile_suffix_regex(suffixes).search,
            infix_finditer=compile_infix_regex(infixes).finditer,
            token_match=defaults.token_match,
            url_match=defaults.url_match,
        )

    return biomed_tokenizer_factory


def biomed_nlp(lang: str = "en") -> Language:
    """A blank pipeline with the biomedical tokenizer (for converters and tests)."""
    config = {"nlp": {"tokenizer": {"@tokenizers": "medlink.BiomedTokenizer.v1"}}}
    return spacy.blank(lang, config=config)
