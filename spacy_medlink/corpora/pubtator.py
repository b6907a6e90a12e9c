"""PubTator format (NCBI Disease, BC5CDR, MedMentions, any PubTator export): one Doc per document.

A document block is passage lines ``PMID|t|title``, ``PMID|a|abstract`` (or any
number of ``PMID|x|text`` passages, as in full-text exports), then annotation
lines, then a blank line::

    PMID<TAB>start<TAB>end<TAB>mention<TAB>type<TAB>ids[<TAB>extra...]
    PMID<TAB>REL<TAB>id1<TAB>id2[<TAB>extra...]       (relations, e.g. CID)

The text is the passages joined by single spaces; offsets are 0-based,
end-exclusive and continue across passages. Columns after ``ids`` (BC5CDR's
individual mention strings of a composite, sometimes an empty trailing TAB)
are not needed and are ignored.

MedMentions (``corpus_pubtator.txt.gz``, st21pv or full) is this format with
UMLS semantic type IDs as types (``T038``) and ``UMLS:C…`` CUIs as IDs, both
kept as they are; its train/dev/test split is a list of PMIDs per split
(``corpus_pubtator_pmids_{trng,dev,test}.txt``), read with ``pmids``. The
full version gives some mentions several types (``T038,T058``); see
``multi_type`` in `read_pubtator`.

Doc contract (DESIGN.md): every mention is a Span in ``doc.spans[spans_key]``
with ``label_`` the (mapped) type and ``kb_id_`` the normalized concept ID;
``doc.ents`` holds the non-overlapping ones. ``doc.user_data`` holds
``"doc_id"`` (the PMID) and ``"medlink_relations"`` (``[type, id1, id2, ...]``).
"""
import re
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple, Union

import srsly
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import filter_spans

from ..ids import NO_CONCEPT, normalize_kb_id
from .report import ConversionReport, CorpusFormatError, examples_from_docs, open_text

# Named label maps, usable wherever a label map is asked for (CLI, configs).
LABEL_MAPS: Dict[str, Dict[str, str]] = {
    # NCBI Disease: the four annotation classes are all diseases.
    "ncbi": {
        "SpecificDisease": "Disease",
        "Modifier": "Disease",
        "DiseaseClass": "Disease",
        "CompositeMention": "Disease",
    },
    # GNormPlus and NLM-Gene: genes and gene families as Gene (as AIONER trains on them); the
    # other types (protein domains, cell types and lines, chromosome locations) left out, counted.
    "genes": {
        "Gene": "Gene",
        "FamilyName": "Gene",
        "DomainMotif": "",
        "Cell": "",
        "ChromosomeLocation": "",
    },
}
MISALIGNED_MODES = ("expand", "drop")
DUPLICATE_MODES = ("keep", "drop")
MULTI_TYPE_MODES = ("error", "first")
# Report reasons of the PMID filter (read_pubtator's `pmids`).
NOT_LISTED = "document: not in the PMID list"
NOT_LISTED_MENTION = "mention in a document not in the PMID list"
LISTED_MISSING = "document: in the PMID list but not in the corpus file"
MULTI_TYPE_NOTE = "several types, the first kept"

_PASSAGE = re.compile(r"^([^\t|]+)\|([^\t|]*)\|(.*)$")
_INT = re.compile(r"^-?\d+$")
_RELATION_TYPE = re.compile(r"^[A-Za-z_][\w:-]*$")
_PMID = re.compile(r"^\d+$")

LabelMap = Union[None, str, Dict[str, str]]
PathLike = Union[str, Path]
# (line number, fields)
_Line = Tuple[int, List[str]]


def create_pubtator_reader(
    path: Union[str, Path],
    label_map: LabelMap = None,
    misaligned: str = "expand",
    limit: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """Registered as ``medlink.PubTatorCorpus.v1`` (setup.cfg entry point).

    label_map: a dict of corpus type -> label, or a preset name ("ncbi").
    """
    return PubTatorCorpus(path, label_map=label_map, misaligned=misaligned, limit=limit)


def create_pubtator_reader_v2(
    path: Union[str, Path],
    label_map: LabelMap = None,
    misaligned: str = "expand",
    limit: int = 0,
    pmids: Optional[Union[str, Path]] = None,
    multi_type: str = "error",
) -> Callable[[Language], Iterator[Example]]:
    """Registered as ``medlink.PubTatorCorpus.v2``: v1 plus `pmids` (a file of
    the PMIDs to keep, one per line, e.g. MedMentions'
    ``corpus_pubtator_pmids_trng.txt``) and `multi_type` (see `read_pubtator`).
    """
    return PubTatorCorpus(
        path, label_map=label_map, misaligned=misaligned, limit=limit, pmids=pmids, multi_type=multi_type
    )


class PubTatorCorpus:
    """Iterate Examples from a PubTator file, like spacy.training.Corpus.

    The reference Doc is tokenized by the pipeline being trained, so the gold
    spans are checked against the tokens the model will see; the conversion
    report is summarized in a warning once per pass if anything was not kept.
    """

    def __init__(
        self,
        path: Union[str, Path],
        *,
        label_map: LabelMap = None,
        misaligned: str = "expand",
        limit: int = 0,
        pmids: Optional[PathLike] = None,
        multi_type: str = "error",
    ):
        self.path = Path(path)
        self.label_map = resolve_label_map(label_map)
        self.misaligned = _check_mode("misaligned", misaligned, MISALIGNED_MODES)
        self.multi_type = _check_mode("multi_type", multi_type, MULTI_TYPE_MODES)
        self.limit = limit
        self.pmids = Path(pmids) if pmids is not None else None
        if self.pmids is not None:
            read_pmid_list(self.pmids)  # a bad list fails when the config is resolved, not mid-training

    def __call__(self, nlp: Language) -> Iterator[Example]:
        report = ConversionReport(source=str(self.path))
        docs = read_pubtator(
            self.path,
            nlp,
            report,
            label_map=self.label_map,
            misaligned=self.misaligned,
            pmids=self.pmids,
            multi_type=self.multi_type,
        )
        yield from examples_from_docs(nlp, docs, report, self.limit)


def read_pubtator(
    path: Union[str, Path],
    nlp: Language,
    report: ConversionReport,
    *,
    label_map: LabelMap = None,
    misaligned: str = "expand",
    spans_key: str = "mentions",
    duplicates: str = "keep",
    strict: bool = True,
    pmids: Optional[PathLike] = None,
    multi_type: str = "error",
) -> Iterator[Doc]:
    """Read one Doc per document block of a PubTator file (plain or .gz).

    label_map: corpus type -> label (or a preset name). A type the map lacks
        raises CorpusFormatError: an unmapped label would silently become a
        new class. Map a type to "" to leave it out on purpose (counted).
    misaligned: a mention whose offsets fall inside a token is widened to
        token boundaries ("expand", counted as a note) or dropped ("drop",
        counted). A widened mention that now overlaps another is dropped.
    duplicates: a PMID seen before in the file is kept ("keep", counted as a
        note; NCBI's official train counts include its duplicate) or dropped.
    strict: what to do with a mention line that cannot be trusted (too few
        fields, a non-integer offset, start >= end, an offset past the text,
        another document's PMID, a mention string that is not the text at its
        offsets). True raises CorpusFormatError naming file and line; False
        drops the mention and counts it, since the rest of the document is
        still sound. A broken document structure (a line that is neither a
        passage nor an annotation, passages of two PMIDs in one block, an
        annotation before any passage) always raises: no Doc could be right.
    pmids: a file of the PMIDs to keep, one per line (`read_pmid_list`; plain
        or .gz), e.g. MedMentions' official ``corpus_pubtator_pmids_dev.txt``.
        Every other document is skipped and counted (a dropped document, its
        mentions counted as read and dropped with it, unparsed); once the
        whole file is read, each listed PMID that was not in it is counted too
        (a dropped document, e.g. "pmids.txt:12: 123"): the report shows both,
        nothing goes quietly. A partial read (`limit`) counts no missing PMIDs.
    multi_type: a mention line with several comma-separated types (MedMentions
        full: ``T038,T058``; st21pv has exactly one) raises CorpusFormatError
        naming file and line ("error", the default, whatever `strict` says: a
        span has one label, and which type to keep is a choice for the user),
        or keeps the first type ("first", counted as a note; the label map, if
        any, is applied to it). The line is otherwise checked as usual.

    Quirks handled on purpose: ``MESH:``/``OMIM:`` prefixes, stray spaces, ","
    lists, "-1"/"-" (no concept: kb_id "" and a note) via normalize_kb_id,
    whose notes are all counted; whitespace around the mention string (a note).
    """
    path = Path(path)
    label_map = resolve_label_map(label_map)
    _check_mode("misaligned", misaligned, MISALIGNED_MODES)
    _check_mode("duplicates", duplicates, DUPLICATE_MODES)
    _check_mode("multi_type", multi_type, MULTI_TYPE_MODES)
    pmids_path = Path(pmids) if pmids is not None else None
    wanted = read_pmid_list(pmids_path) if pmids_path is not None else None
    if not report.source:
        report.source = str(path)
    seen = set()
    for passages, annotations in _iter_blocks(path):
        pmid, text = _join_passages(path, passages)
        report.documents_read += 1
        relations, mentions = _split_annotations(path, annotations)
        if wanted is not None and pmid not in wanted:
            report.drop(NOT_LISTED, _where(path, passages[0][0]))
            report.mentions_read += len(mentions)
            if mentions:
                report.dropped[NOT_LISTED_MENTION] += len(mentions)
            continue
        if pmid in seen:
            where = _where(path, passages[0][0])
            if duplicates == "drop":
                report.drop("document: duplicate document", where)
                for line, _ in mentions:
                    report.mentions_read += 1
                    report.drop("mention in a dropped duplicate document", _where(path, line))
                continue
            report.note("duplicate document", where)
        seen.add(pmid)
        doc = nlp.make_doc(text)
        doc.user_data["doc_id"] = pmid
        doc.user_data["medlink_relations"] = [fields[1:] for _, fields in relations]
        for line, _ in relations:
            report.note("relation line kept in user_data['medlink_relations']", _where(path, line))
        spans = _make_spans(path, doc, pmid, mentions, report, label_map, misaligned, strict, multi_type)
        set_mentions(doc, spans, spans_key, report, path)
        report.documents_kept += 1
        yield doc
    if wanted is not None and pmids_path is not None:
        for pmid, line in wanted.items():
            if pmid not in seen:
                report.drop(LISTED_MISSING, f"{_where(pmids_path, line)}: {pmid}")


def read_pmid_list(path: PathLike) -> Dict[str, int]:
    """PMID -> line number, from a file of one PMID (digits) per line (plain or .gz).

    Blank lines are skipped. A line that is not a PMID (a header, a second
    column, a "PMID:" prefix) or a PMID listed twice (a concatenation mistake:
    a split is a set) raises CorpusFormatError naming the file and line; a
    file without any PMID raises ValueError.
    """
    path = Path(path)
    pmids: Dict[str, int] = {}
    with open_text(path, encoding="utf-8-sig") as file_:
        for i, raw in enumerate(file_, start=1):
            value = raw.strip()
            if not value:
                continue
            if not _PMID.match(value):
                raise CorpusFormatError(path, i, f"expected one PMID (digits only) per line, got {value[:60]!r}")
            if value in pmids:
                raise CorpusFormatError(path, i, f"PMID {value} listed twice (first on line {pmids[value]})")
            pmids[value] = i
    if not pmids:
        raise ValueError(f"{path}: no PMIDs in the list: it would skip every document")
    return pmids


def set_mentions(
    doc: Doc,
    spans: List[Tuple[int, Span]],
    spans_key: str,
    report: ConversionReport,
    path: Path,
) -> None:
    """All mentions into doc.spans[spans_key]; the non-overlapping into doc.ents."""
    doc.spans[spans_key] = [span for _, span in spans]
    ents = filter_spans([span for _, span in spans])
    kept = {(e.start, e.end, e.label, e.kb_id) for e in ents}
    for line, span in spans:
        key = (span.start, span.end, span.label, span.kb_id)
        if key in kept:
            kept.discard(key)  # an exact duplicate is an overlap too
        else:
            report.note("overlapping mention kept in doc.spans only", _where(path, line))
    doc.ents = ents


def resolve_label_map(label_map: LabelMap) -> Optional[Dict[str, str]]:
    """A label map from a dict, a preset name, a JSON object string or a .json file."""
    if label_map is None or isinstance(label_map, dict):
        return label_map
    value = str(label_map).strip()
    if value in LABEL_MAPS:
        return dict(LABEL_MAPS[value])
    if value.startswith("{"):
        loaded = srsly.json_loads(value)
    elif value.endswith(".json") and Path(value).exists():
        loaded = srsly.read_json(value)
    else:
        presets = ", ".join(sorted(LABEL_MAPS))
        raise ValueError(f"label map {value!r} is not a preset ({presets}), a JSON object or a .json file")
    if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
        raise ValueError(f"label map {value!r} must map types to label strings")
    return loaded


def iter_pubtator_texts(path: PathLike) -> Iterator[Tuple[str, List[Tuple[str, str]], int]]:
    """(PMID, [(passage type, text)], first line) per document, annotations
    skipped: the text `python -m spacy_medlink annotate` reads."""
    path = Path(path)
    for passages, _ in _iter_blocks(path):
        pmid, _ = _join_passages(path, passages)  # one PMID per block, checked
        yield pmid, [(kind, text) for _, (_, kind, text) in passages], passages[0][0]


def _iter_blocks(path: Path) -> Iterator[Tuple[List[_Line], List[_Line]]]:
    """(passage lines, annotation lines) per blank-line-separated block."""
    passages: List[_Line] = []
    annotations: List[_Line] = []
    with open_text(path) as file_:
        for i, raw in enumerate(file_, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                if passages or annotations:
                    yield _check_block(path, passages, annotations)
                passages, annotations = [], []
                continue
            match = _PASSAGE.match(line)
            if match:
                passages.append((i, list(match.groups())))
            elif "\t" in line:
                annotations.append((i, line.split("\t")))
            else:
                raise CorpusFormatError(
                    path, i, f"neither a passage line 'PMID|t|text' nor a TAB-separated annotation: {line[:60]!r}"
                )
    if passages or annotations:
        yield _check_block(path, passages, annotations)


def _check_block(path: Path, passages: List[_Line], annotations: List[_Line]) -> Tuple[List[_Line], List[_Line]]:
    if not passages:
        raise CorpusFormatError(path, annotations[0][0], "annotation line before any passage line of its document")
    return passages, annotations


def _join_passages(path: Path, passages: List[_Line]) -> Tuple[str, str]:
    pmid = passages[0][1][0].strip()
    for line, (other, _, _) in passages[1:]:
        if other.strip() != pmid:
            raise CorpusFormatError(
                path, line, f"passage of PMID {other!r} inside the block of PMID {pmid!r} (missing blank line?)"
            )
    return pmid, " ".join(text for _, (_, _, text) in passages)


def _split_annotations(path: Path, annotations: List[_Line]) -> Tuple[List[_Line], List[_Line]]:
    """Relation lines and mention lines. A relation line has 4 or 5 fields
    (BioRED adds a novelty column) and a word (CID, Association, ...) where a
    mention has its start offset; anything else is a mention line, checked
    as one, so a broken mention is never mistaken for a relation."""
    relations, mentions = [], []
    for line, fields in annotations:
        second = fields[1].strip()
        if len(fields) in (4, 5) and _RELATION_TYPE.match(second) and not _INT.match(fields[2].strip()):
            relations.append((line, [f.strip() for f in fields]))
        else:
            mentions.append((line, fields))
    return relations, mentions


def _make_spans(
    path: Path,
    doc: Doc,
    pmid: str,
    mentions: List[_Line],
    report: ConversionReport,
    label_map: Optional[Dict[str, str]],
    misaligned: str,
    strict: bool,
    multi_type: str = "error",
) -> List[Tuple[int, Span]]:
    """(line, Span) for every kept mention, in corpus order."""
    text = doc.text
    aligned: List[Tuple[int, Span]] = []
    expanded: List[Tuple[int, Span, int, int]] = []
    for line, fields in mentions:
        report.mentions_read += 1
        where = _where(path, line)
        try:
            start, end, type_, label, kb_id = _parse_mention(
                path, line, fields, text, pmid, label_map, report, multi_type
            )
        except _BadMention as err:
            if strict:
                raise CorpusFormatError(path, line, str(err)) from None
            report.drop(f"malformed mention line: {err.reason}", f"{where}: {err}")
            continue
        if not label:
            report.drop(f"type {type_!r} mapped to no label", where)
            continue
        span = doc.char_span(start, end, label=label, kb_id=kb_id, alignment_mode="strict")
        if span is not None:
            aligned.append((line, span))
            continue
        if misaligned == "drop":
            report.drop("not aligned to token boundaries", f"{where}: {text[start:end]!r}")
            continue
        span = doc.char_span(start, end, label=label, kb_id=kb_id, alignment_mode="expand")
        if span is None or len(span) == 0:
            report.drop("no token inside the mention", where)
            continue
        expanded.append((line, span, start, end))
    # A widened mention must not swallow a neighbour that the corpus kept apart.
    result = [(line, span, span.start_char, span.end_char) for line, span in aligned]
    for line, span, start, end in expanded:
        clash = any(
            span.start < other.end and other.start < span.end and not (start < o_end and o_start < end)
            for _, other, o_start, o_end in result
        )
        if clash:
            report.drop("expanded to token boundaries, then overlapped another mention", _where(path, line))
            continue
        report.note("expanded to token boundaries", f"{_where(path, line)}: {text[start:end]!r} -> {span.text!r}")
        result.append((line, span, start, end))
    result.sort(key=lambda item: item[0])
    for _, span, _, _ in result:
        report.keep(span.label_)
    return [(line, span) for line, span, _, _ in result]


class _BadMention(ValueError):
    def __init__(self, reason: str, detail: str):
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


def _parse_mention(
    path: Path,
    line: int,
    fields: List[str],
    text: str,
    pmid: str,
    label_map: Optional[Dict[str, str]],
    report: ConversionReport,
    multi_type: str = "error",
) -> Tuple[int, int, str, str, str]:
    """(start, end, type, label, kb_id) of a mention line, or _BadMention."""
    where = _where(path, line)
    if len(fields) < 5:
        raise _BadMention("too few fields", f"expected PMID, start, end, mention, type[, ids]; got {len(fields)} fields")
    # a mention without a concept may have no ID column at all (GNormPlus, NLM-Gene)
    raw_pmid, raw_start, raw_end, mention, type_, ids = (fields + [""])[:6]
    if raw_pmid.strip() != pmid:
        raise _BadMention("PMID of another document", f"{raw_pmid.strip()!r} in the block of {pmid!r}")
    if not (_INT.match(raw_start.strip()) and _INT.match(raw_end.strip())):
        raise _BadMention("non-integer offset", f"start {raw_start!r}, end {raw_end!r}")
    start, end = int(raw_start), int(raw_end)
    if not 0 <= start < end:
        raise _BadMention("empty or negative span", f"start {start}, end {end}")
    if end > len(text):
        raise _BadMention("offset past the end of the text", f"end {end} > text length {len(text)}")
    if text[start:end] != mention.strip():
        raise _BadMention("mention string differs from the text", f"{mention!r} vs text[{start}:{end}] {text[start:end]!r}")
    if mention != mention.strip():
        report.note("whitespace stripped from mention string", where)
    type_ = type_.strip()
    if not type_:
        raise _BadMention("empty type", "the type field is empty")
    if "," in type_:
        types = [t.strip() for t in type_.split(",")]
        if not all(types):
            raise _BadMention("empty type", f"an empty item in the type list {type_!r}")
        if multi_type == "error":
            raise CorpusFormatError(
                path,
                line,
                f"several types {type_!r} in one mention (MedMentions full?); a span has one label: "
                "use st21pv, or multi_type='first' (convert --multi-type first) to keep the first, counted",
            )
        report.note(MULTI_TYPE_NOTE, f"{where}: {type_!r} -> {types[0]!r}")
        type_ = types[0]
    if label_map is None:
        label = type_
    elif type_ in label_map:
        label = label_map[type_]
    else:
        raise CorpusFormatError(path, line, f"type {type_!r} is not in the label map {sorted(label_map)}")
    kb_id, notes = normalize_kb_id(ids)
    for note in notes:
        report.note(note, where)
    if kb_id == NO_CONCEPT:
        report.note("no concept", where)
    return start, end, type_, label, kb_id


def _where(path: Path, line: int) -> str:
    return f"{path.name}:{line}"


def _check_mode(name: str, value: str, allowed: Tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
    return value
