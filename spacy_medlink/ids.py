"""Concept ID normalization: the one place that knows how corpora and KBs spell IDs.

Doc contract (DESIGN.md): MeSH IDs are bare (``D009369``, ``C535662``), other
vocabularies keep their prefix (``OMIM:106210``). A composite mention keeps its
IDs in corpus order, ``|`` between coordinated concepts and ``+`` inside a
conjunction (one mention denoting several concepts at once). "No concept" is
the empty string. Scoring compares the *set* of atomic IDs (``split_kb_id``).
"""
import re
from typing import FrozenSet, List, Tuple

NO_CONCEPT = ""
# Spellings corpora use for "this mention has no concept".
_NIL_ATOMS = {"", "-", "-1", "nil", "none", "cui-less"}
# Prefixes whose case we normalize; MeSH is stripped to the bare form.
_MESH_PREFIX = re.compile(r"^(mesh|msh)\s*:\s*", re.IGNORECASE)
_OMIM_PREFIX = re.compile(r"^omim\s*:\s*", re.IGNORECASE)
_ATOM_SEPARATORS = re.compile(r"[|+,;]")


def normalize_atom(raw: str) -> str:
    """Normalize one atomic ID; nil spellings give NO_CONCEPT."""
    atom = raw.strip()
    if atom.lower() in _NIL_ATOMS:
        return NO_CONCEPT
    if _MESH_PREFIX.match(atom):
        atom = _MESH_PREFIX.sub("", atom)
    elif _OMIM_PREFIX.match(atom):
        atom = "OMIM:" + _OMIM_PREFIX.sub("", atom)
    return atom


def normalize_kb_id(raw: str) -> Tuple[str, List[str]]:
    """Normalize an ID field (possibly composite) to the Doc contract.

    Returns the normalized ID string and a list of notes describing every
    change made (prefix stripped, space removed, nil part dropped, ...), so a
    converter can account for them. ``,`` and ``;`` lists become ``|``.
    """
    notes: List[str] = []
    if raw != raw.strip():
        notes.append("whitespace stripped from ID")
    parts: List[Tuple[str, str]] = []  # (separator before atom, atom)
    sep = ""
    pos = 0
    for match in _ATOM_SEPARATORS.finditer(raw):
        parts.append((sep, raw[pos : match.start()]))
        sep = match.group()
        pos = match.end()
    parts.append((sep, raw[pos:]))
    out: List[str] = []
    n_nil = 0
    for sep, atom_raw in parts:
        atom = normalize_atom(atom_raw)
        if atom_raw.strip() and _MESH_PREFIX.match(atom_raw.strip()):
            notes.append("MESH: prefix stripped")
        if sep in {",", ";"}:
            notes.append(f"'{sep}' list separator read as '|'")
            sep = "|"
        if atom == NO_CONCEPT:
            n_nil += 1
            continue
        if out:
            out.append(sep or "|")
        out.append(atom)
    if n_nil and out:
        notes.append("nil part of a composite ID dropped")
    return "".join(out), notes


def split_kb_id(kb_id: str) -> FrozenSet[str]:
    """The set of atomic concept IDs in a (possibly composite) kb_id."""
    return frozenset(a for a in (p.strip() for p in _ATOM_SEPARATORS.split(kb_id)) if a)
