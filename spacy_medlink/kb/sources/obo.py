"""OBO ontologies (MONDO, HPO, DOID, ChEBI): the `[Term]` stanzas of a `.obo` file.

A term is a concept with its `id` (normalized: ``MESH:D003920`` -> ``D003920``,
others as written: ``MONDO:0005015``), its `name`, and as synonyms the
`synonym` lines of the kept scopes. Only EXACT synonyms are kept by default:
RELATED, NARROW and BROAD ones name other, related concepts ("diabetes" is a
BROAD synonym of type 2 diabetes), which a linker would then return for the
wrong mentions. ChEBI marks most of its names RELATED (brand names, IUPAC
names), so for ChEBI keep ("EXACT", "RELATED"); its structures (FORMULA,
InChI, InChIKey and SMILES synonyms) are left out, counted.

`alt_id` and the `xref`s that name MeSH or OMIM become alternative IDs, so
that corpora's MeSH and OMIM IDs resolve to the term (an ID claimed by several
terms resolves to the first, and a MeSH ID that is a concept of its own, from
MEDIC or MeSH read before, stays that concept). An obsolete term
(`is_obsolete: true`) is left out, counted; its `replaced_by` term, when the
KB holds it, gets its ID as an alternative ID.

Values are read as the OBO 1.4 format writes them: a `!` comment and trailing
`{...}` modifiers dropped, backslash escapes undone, synonyms quoted. Legacy
`exact_synonym:`-style tags are read too. Every term is typed with `types`.
"""
import re
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ...corpora.report import CorpusFormatError, open_text
from ...ids import normalize_kb_id, split_kb_id
from ..concept_kb import Concept, ConceptKB

PathLike = Union[str, Path]
SCOPES = ("EXACT", "RELATED", "NARROW", "BROAD")
XREF_PREFIXES = frozenset({"MESH", "MSH", "OMIM"})
# ChEBI's synonym types for structures, which are no names a text mentions
STRUCTURE_TYPES = frozenset({"FORMULA", "InChI", "InChIKey", "SMILES"})
_LEGACY_SYNONYMS = {"exact_synonym": "EXACT", "related_synonym": "RELATED", "narrow_synonym": "NARROW",
                    "broad_synonym": "BROAD"}
_HEADER = re.compile(r"^\[([A-Za-z]+)\]$")
_COMMENT = re.compile(r"(?<!\\)!.*$")
_MODIFIERS = re.compile(r"\s*(?<!\\)\{[^{}]*\}\s*$")
_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"(.*)$')
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "W": " "}
# (tag, value, line number)
_Line = Tuple[str, str, int]


def _unescape(value: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), value)


def _plain(value: str) -> str:
    """An unquoted value without its comment and trailing modifiers, escapes undone."""
    return _unescape(_MODIFIERS.sub("", _COMMENT.sub("", value)).strip())


def _synonym(tag: str, value: str, path: PathLike, line_no: int) -> Tuple[str, str, str]:
    """(text, scope, type) of a synonym line: ``"text" SCOPE [TYPE] [xrefs] {modifiers} ! comment``."""
    match = _QUOTED.match(value.strip())
    if match is None:
        raise CorpusFormatError(path, line_no, f"{tag}: expected a quoted string, found {value.strip()!r}")
    text, rest = _unescape(match.group(1)).strip(), _MODIFIERS.sub("", _COMMENT.sub("", match.group(2))).strip()
    if tag in _LEGACY_SYNONYMS:
        return text, _LEGACY_SYNONYMS[tag], ""
    words = rest.split("[", 1)[0].split()
    scope = words[0] if words else "RELATED"  # OBO 1.4's default
    if scope not in SCOPES:
        raise CorpusFormatError(path, line_no, f"synonym scope {scope!r} is none of {', '.join(SCOPES)}")
    return text, scope, words[1] if len(words) > 1 else ""


def _stanzas(path: PathLike, header: Dict[str, str]) -> Iterator[Tuple[str, int, List[_Line]]]:
    """(stanza type, line of its header, its tag-value lines); `header` gets the file header's tags."""
    kind, start = "", 0
    lines: List[_Line] = []
    with open_text(path) as text:
        for line_no, raw in enumerate(text, start=1):
            line = raw.strip()
            if not line or line.startswith("!"):
                continue
            if line.startswith("["):
                match = _HEADER.match(_COMMENT.sub("", line).strip())
                if match is None:
                    raise CorpusFormatError(path, line_no, f"bad stanza header {line!r}")
                if kind:
                    yield kind, start, lines
                kind, start, lines = match.group(1), line_no, []
                continue
            tag, sep, value = line.partition(":")
            if not sep or not tag.strip() or " " in tag.strip():
                raise CorpusFormatError(path, line_no, f"expected 'tag: value', found {line!r}")
            if kind:
                lines.append((tag.strip(), value, line_no))
            else:
                header.setdefault(tag.strip(), _plain(value))
    if kind:
        yield kind, start, lines


def _term_id(value: str, path: PathLike, line_no: int) -> str:
    cid, _ = normalize_kb_id(_plain(value))
    if len(split_kb_id(cid)) != 1:
        raise CorpusFormatError(path, line_no, f"bad ID {value.strip()!r}")
    return cid


def read_obo(
    path: PathLike,
    kb: Optional[ConceptKB] = None,
    synonym_scopes: Sequence[str] = ("EXACT",),
    types: Optional[Sequence[str]] = None,
    source: Optional[str] = None,
) -> Tuple[ConceptKB, Counter]:
    """Add the terms of an OBO file to `kb`, each typed with `types`.

    `synonym_scopes`: the synonym scopes that become names. `source` defaults
    to the file's `ontology:` header (``mondo``), else its name.
    """
    unknown = [s for s in synonym_scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown synonym scopes {unknown}: use {', '.join(SCOPES)}")
    kb = kb if kb is not None else ConceptKB()
    stats: Counter = Counter()
    header: Dict[str, str] = {}
    replaced: List[Tuple[str, str, int]] = []  # (obsolete ID, replacement, line)
    term_types = tuple(types or ())
    for kind, start, lines in _stanzas(path, header):
        if kind != "Term":
            stats[f"skipped: [{kind}] stanzas"] += 1
            continue
        stats["terms"] += 1
        cid, name, obsolete = "", "", False
        synonyms: List[str] = []
        alt_ids: List[str] = []
        replaced_by: List[Tuple[str, int]] = []
        for tag, value, line_no in lines:
            if tag == "id":
                if cid:
                    raise CorpusFormatError(path, line_no, f"a second id in the [Term] of {cid}")
                cid = _term_id(value, path, line_no)
            elif tag == "name":
                if name:
                    raise CorpusFormatError(path, line_no, "a second name in one [Term]")
                name = _plain(value)
            elif tag == "synonym" or tag in _LEGACY_SYNONYMS:
                text, scope, synonym_type = _synonym(tag, value, path, line_no)
                if synonym_type in STRUCTURE_TYPES:
                    stats["synonyms left out: structures (formula, InChI, SMILES)"] += 1
                elif scope in synonym_scopes and text:
                    synonyms.append(text)
                    stats[f"synonyms {scope}"] += 1
                else:
                    stats[f"synonyms left out: {scope}"] += 1
            elif tag == "alt_id":
                alt_ids.append(_term_id(value, path, line_no))
            elif tag == "xref":
                xref = (_plain(value).split(None, 1) or [""])[0]  # an xref may be followed by a quoted description
                if ":" in xref and xref.split(":", 1)[0].upper() in XREF_PREFIXES:
                    alt_ids.append(_term_id(xref, path, line_no))
                    stats["xrefs kept as alt IDs (MeSH, OMIM)"] += 1
                else:
                    stats["xrefs of other vocabularies"] += 1
            elif tag == "is_obsolete":
                obsolete = _plain(value).lower() == "true"
            elif tag == "replaced_by":
                replaced_by.append((_plain(value), line_no))
        if not cid:
            raise CorpusFormatError(path, start, "[Term] without id")
        if obsolete:
            stats["skipped: obsolete"] += 1
            replaced.extend((cid, value, line_no) for value, line_no in replaced_by)
            continue
        if not name:
            stats["skipped: no name"] += 1
            continue
        kb.add(Concept(cid, name, tuple(synonyms), term_types, tuple(alt_ids), (source or _source_name(path, header),)))
        stats["concepts"] += 1
        stats["alt IDs"] += len(alt_ids)
    for old, value, line_no in replaced:
        new = kb.resolve(_term_id(value, path, line_no))
        if new in kb:
            kb.add(Concept(new, kb[new].name, alt_ids=(old,)))
            stats["obsolete: ID kept as an alt ID of its replacement"] += 1
        else:
            stats["obsolete: replacement not in the KB"] += 1
    return kb, stats


def _source_name(path: PathLike, header: Dict[str, str]) -> str:
    if header.get("ontology"):
        return header["ontology"]
    name = Path(path).name
    for suffix in (".gz", ".obo"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return name
