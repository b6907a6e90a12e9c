"""Short forms defined in a document ("familial Mediterranean fever (FMF)").

A mention "FMF" is hard to link from its own letters; its long form is easy.
`abbreviation_map` runs Schwartz & Hearst's detector on a Doc and returns,
for that Doc, short form text → long form text.

The detector follows scispacy's (`scispacy.abbreviation`), step for step, with
two of its faults fixed: it measures short forms by their text, not per token,
so hyphenated ones ("T-PLL", "5-FU") are found, and it matches on the doc's own
text, so a long form that starts with a hyphenated word keeps its start
("X-linked dilated cardiomyopathy"). It needs token boundaries only (a
Matcher over "(" ... ")"): no parser, tagger or sentence boundaries, and it
writes no Doc/Span extension.

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
import re
from functools import lru_cache
from typing import Dict, List, Optional, Tuple

import numpy
from spacy.attrs import ORTH
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab
from scispacy.abbreviation import short_form_filter, span_contains_unbalanced_parentheses

_MATCHERS: Dict[int, Matcher] = {}


def _bracket_matcher(vocab: Vocab) -> Matcher:
    """"(" ... ")" spans, one Matcher per vocab (scispacy's pattern)."""
    matcher = _MATCHERS.get(id(vocab))
    if matcher is None or matcher.vocab is not vocab:
        matcher = Matcher(vocab)
        matcher.add("parenthesis", [[{"ORTH": "("}, {"OP": "+"}, {"ORTH": ")"}]])
        _MATCHERS[id(vocab)] = matcher
    return matcher


def short_form_ok(span: Span) -> bool:
    """scispacy's short-form test (2-9 characters a token, at least half letters, a letter
    first), or the same on the text of a short form without spaces, which may also start
    with a digit and a hyphen ("5-FU"). scispacy applies its length test per token, which
    turns away every hyphenated short form ("T-PLL", "5-FU" are three tokens)."""
    text = span.text
    if not text:
        return False
    if short_form_filter(span):
        return True
    return (2 <= len(text) < 10 and sum(ch.isalpha() for ch in text) * 2 >= len(text)
            and not any(ch.isspace() or ch in "()[]" for ch in text) and text[-1].isalnum()
            and (text[0].isalpha() or (text[0].isdigit() and "-" in text[1:3])))


def _definitions(doc: Doc) -> List[Tuple[Span, Span]]:
    """(long form candidate, short form) for each bracket: "long form (SF)", or "SF (long form)"
    when the brackets hold more than 3 tokens (scispacy's `filter_matches`, with `short_form_ok`)."""
    out = []
    for _, start, end in _bracket_matcher(doc.vocab)(doc):
        start, end = start + 1, end - 1  # inside the brackets
        if end - start > 8 or start == 1:
            continue
        if end - start > 3:
            short, long_cand = doc[start - 2 : start - 1], doc[start:end]
            if span_contains_unbalanced_parentheses(long_cand):
                continue
        else:
            short = doc[start:end]
            n_chars = sum(len(t) for t in short)
            long_cand = _after_brackets(doc[max(start - min(n_chars + 5, n_chars * 2) - 1, 0) : start - 1])
        if len(short) and len(long_cand) and short_form_ok(short):
            out.append((long_cand, short))
    return out


_REMARK_AFTER = {",", ";", ":"}  # a "(" after one of these (or a space) opens a remark, not part of a name
# the pieces of a chemical name's prefix that a long form may start with: locants and stereo descriptors
# ("13-cis-", "N-(2-", "3,4-", "17alpha-", "p-"), not words ("Anti-", "AVP-", "pre-pro-")
_LOCANT = re.compile(r"[\d,']+|[A-Za-z]\d*|\d*(?:alpha|beta|gamma|delta|omega|cis|trans)", re.IGNORECASE)


def _locant_prefix(prefix: str) -> bool:
    pieces = [p.strip("()[]") for p in prefix.split("-")]
    return all(not p or _LOCANT.fullmatch(p) for p in pieces)


def _after_brackets(window: Span) -> Span:
    """The part of a long-form window after its last parenthetical remark or unmatched bracket
    ("anterior (ANT-MI) and inferior infarction (INF-MI)" gives "and inferior infarction");
    brackets inside a word stay ("bis(p-nitrophenyl) phosphate")."""
    doc = window.doc
    cut, opened = window.start, []
    for token in window:
        if token.text == "(":
            opened.append(token.i)
        elif token.text == ")":
            if not opened:
                cut = token.i + 1
                continue
            o = opened.pop()
            if o == 0 or doc[o - 1].whitespace_ or doc[o - 1].text in _REMARK_AFTER:
                cut = token.i + 1
    if opened:
        cut = max(cut, opened[-1] + 1)
    return doc[cut : window.end]


def find_long_form(long_cand: Span, short: Span) -> Optional[Span]:
    """Schwartz & Hearst's match of `short`'s letters and digits, right to left, in the
    text of `long_cand`, the first at the start of a word; the long form is the tokens
    from there. scispacy's `find_abbreviation` matches on the tokens joined by spaces
    and maps the position back on the text, which puts the start late wherever tokens
    have no space between them ("linked dilated cardiomyopathy" for XLDCM). The long form
    starts where the word does in which the match starts (chemical names hold hyphens and brackets)."""
    text, sf = long_cand.text, short.text
    li, si = len(text) - 1, len(sf) - 1
    while si >= 0:
        ch = sf[si].lower()
        if not ch.isalnum():
            si -= 1
            continue
        while li >= 0 and (text[li].lower() != ch or (si == 0 and li > 0 and text[li - 1].isalnum())):
            li -= 1
        if li < 0:
            return None
        li -= 1
        si -= 1
    # from the start of the whitespace-delimited word where what precedes the match is a chemical
    # name's locants: "13-cis-retinoic acid" for cis-RA, "N-(2-hydroxypropyl)methacrylamide" for
    # HPMA, not "cis-retinoic acid", "hydroxypropyl)methacrylamide"; but "neurophysin II" for NPII
    # in "AVP-neurophysin II"
    li += 1
    first = word = li
    while word > 0 and not text[word - 1].isspace() and text[word - 1] not in "/\"'":
        word -= 1
    if _locant_prefix(text[word:first]):
        li = word
    # then not from punctuation, nor from a bracket that does not close in the long form ("[sinus-cycle length")
    while li < first and not text[li].isalnum() and not (text[li] in "([" and ")]"["([".index(text[li])] in text[li:]):
        li += 1
    start_char = long_cand.start_char + li
    doc = long_cand.doc
    end = long_cand.end
    while end > long_cand.start and not (doc[end - 1].text[-1].isalnum() or doc[end - 1].text[-1] in ")]"):
        end -= 1  # "antibody-(PR3-ANCA)": no trailing hyphen
    for token in long_cand:
        if token.idx + len(token) > start_char:
            return doc[token.i : end] if token.i < end else None
    return None


def _holds_word(text: str, word: str) -> bool:
    """`word` in `text`, not inside a longer word or a hyphenated one."""
    start = text.find(word)
    while start >= 0:
        before, after = text[start - 1 : start], text[start + len(word) : start + len(word) + 1]
        if not (before.isalnum() or before == "-" or after.isalnum() or after == "-"):
            return True
        start = text.find(word, start + 1)
    return False


def abbreviation_spans(doc: Doc) -> List[Tuple[Span, List[Span]]]:
    """The abbreviations defined in `doc`: (long form, its short forms' spans).

    The short forms are every occurrence of the short form's tokens in the doc,
    the one in brackets included; the long form is the span in the definition.
    A long or short form defined twice keeps its first definition (scispacy's rule)."""
    found: Dict[Tuple[int, int], Tuple[Span, Span]] = {}
    seen_long, seen_short = set(), set()
    for long_cand, short in _definitions(doc):
        long_form = find_long_form(long_cand, short)
        if long_form is None or long_form.text in seen_long or short.text in seen_short:
            continue
        if len(long_form.text) <= len(short.text) or _holds_word(long_form.text, short.text):
            continue  # Schwartz & Hearst: a long form is longer than its short form and does not hold it
        seen_long.add(long_form.text)
        seen_short.add(short.text)
        found[(long_form.start, long_form.end)] = (long_form, short)
    if not found:
        return []
    orths = doc.to_array(ORTH)
    out = []
    for long_form, short in found.values():
        ids = [t.orth for t in short]
        starts = numpy.flatnonzero(orths == ids[0])
        out.append((long_form, [doc[i : i + len(ids)] for i in starts.tolist()
                                if len(ids) == 1 or orths[i : i + len(ids)].tolist() == ids]))
    return out


def abbreviation_map(doc: Doc) -> Dict[str, str]:
    """Short form text → long form text for the abbreviations defined in `doc`.

    A long form that holds another short form of the doc has it spelled out
    ("isolated DMS (IDMS)" after "diffuse mesangial sclerosis (DMS)": IDMS →
    "isolated diffuse mesangial sclerosis"), as deep as they nest (`spell_out`)."""
    return abbreviation_maps(doc)[0]


def abbreviation_maps(doc: Doc) -> Tuple[Dict[str, str], Dict[str, str]]:
    """`abbreviation_map`, and the part of it that may be spelled out inside other text:
    short forms (`is_short_form`) defined as "long form (SF)", not the reversed
    "SF (long form)", whose bracket often holds more than a long form ("MPS IVA; OMIM # 253000")."""
    out, spellable = _maps(doc)
    return {short: spell_out(long_text, spellable, exclude=short) for short, long_text in out.items()}, spellable


def _maps(doc: Doc) -> Tuple[Dict[str, str], Dict[str, str]]:
    out: Dict[str, str] = {}
    spellable: Dict[str, str] = {}
    for long_form, short_forms in abbreviation_spans(doc):
        # "long form (SF)": the defining short form follows the long form's bracket
        defined_after = any(long_form.end <= short.start <= long_form.end + 2 for short in short_forms)
        for short in short_forms:
            if short.text != long_form.text and short.text not in out:
                out[short.text] = long_form.text
                if defined_after and is_short_form(short.text):
                    spellable[short.text] = long_form.text
    return out, spellable


@lru_cache(maxsize=1024)
def _patterns(words: Tuple[str, ...]) -> Tuple["re.Pattern[str]", "re.Pattern[str]"]:
    """Any of `words` as a whole word (not inside a longer word or a hyphenated one), longest
    first, with the word after it; and a bracket that opens with one of them."""
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    word = rf"(?<![\w-])(?:{alternatives})(?![\w-])"
    return re.compile(rf"{word}(?=(?:\s+(\w+))?)"), re.compile(rf"\s*\(\s*{word}[^()]*\)")


def spell_out(text: str, abbrevs: Dict[str, str], *, exclude: str = "", depth: int = 3) -> str:
    """`text` with each short form of `abbrevs` spelled out, in one pass and again while the long
    forms hold others (up to `depth`), and each bracket that opens with one left out
    ("gastrointestinal (GI) toxicity" → "gastrointestinal toxicity"); a word the long form
    ends with is not repeated ("BFLS syndrome" → "Borjeson-Forssman-Lehmann syndrome")."""
    abbrevs = {k: v for k, v in abbrevs.items() if k != exclude}
    if not any(k in text for k in abbrevs):
        return " ".join(text.split())
    spelled, brackets = _patterns(tuple(sorted(abbrevs)))

    def replace(match: "re.Match[str]") -> str:
        long_words = abbrevs[match.group(0)].split()
        after = match.group(1)
        if after and len(long_words) > 1 and long_words[-1].lower() == after.lower():
            long_words = long_words[:-1]
        return " ".join(long_words)

    for _ in range(depth):
        new = spelled.sub(replace, brackets.sub("", text))
        if new == text:
            break
        text = new
    return " ".join(text.split())


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
