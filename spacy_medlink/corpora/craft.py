"""CRAFT v5 (full-text PMC articles): ChEBI chemicals and MONDO diseases.

Reads the release as downloaded (``CRAFT-5.0.2`` folder, or a .tar.gz of it):
``articles/txt/<PMID>.txt``, the ChEBI Knowtator v1 XML
(``concept-annotation/CHEBI/CHEBI/knowtator/<PMID>.txt.knowtator.xml``) and the
MONDO Knowtator 2 XML without genotype annotations
(``concept-annotation/MONDO/MONDO_without_genotype_annotations/knowtator-2/<PMID>.xml``),
and the official split lists ``articles/ids/craft-ids-{train,dev,test}.txt``.

One Doc per paragraph (blank-line separated; an article is ~40K characters),
``doc_id`` ``<PMID>#<paragraph start offset>``. IDs are kept prefixed
(``CHEBI:17234``, ``MONDO:0007739``): they are not MeSH, so CRAFT scores NER
only. Left out, counted: discontinuous mentions (BC5CDR has none; their
covering span would be a different mention) and any mention across a
paragraph break. Kept as the corpus has them, although BC5CDR's guidelines
leave them out: ChEBI roles and generic classes ("water", "solution",
"food"), ions as their own classes, and MONDO's generic "disease or disorder".
"""
import xml.etree.ElementTree as ET
from typing import Dict, Iterator, List, Optional

from spacy.language import Language
from spacy.tokens import Doc

from .report import ConversionReport
from .standoff import Archive, Mention, label_for, make_doc, split_paragraphs

CRAFT_LABEL_MAP: Dict[str, str] = {"CHEBI": "Chemical", "MONDO": "Disease"}
SPLITS = ("train", "dev", "test")
_CHEBI_DIR = "concept-annotation/CHEBI/CHEBI/knowtator/"
_MONDO_DIR = "concept-annotation/MONDO/MONDO_without_genotype_annotations/knowtator-2/"


def read_craft(
    path,
    nlp: Language,
    report: ConversionReport,
    *,
    split: str = "test",
    label_map: Optional[Dict[str, str]] = None,
    misaligned: str = "expand",
) -> Iterator[Doc]:
    """Docs of one official split of CRAFT (see the module docstring)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    label_map = dict(CRAFT_LABEL_MAP if label_map is None else label_map)
    archive = Archive(path)
    root = _root(archive)
    report.source = report.source or f"{archive.path} ({split})"
    ids_name = f"{root}articles/ids/craft-ids-{split}.txt"
    pmids = [line.strip() for line in archive.read_text(ids_name).splitlines() if line.strip()]
    for pmid in pmids:
        report.documents_read += 1
        text = archive.read_text(f"{root}articles/txt/{pmid}.txt")
        mentions = list(_chebi(archive, f"{root}{_CHEBI_DIR}{pmid}.txt.knowtator.xml", text, label_map, report))
        mentions += list(_mondo(archive, f"{root}{_MONDO_DIR}{pmid}.xml", text, label_map, report))
        mentions.sort(key=lambda m: (m.start, m.end))
        placed = [False] * len(mentions)
        for start, end in split_paragraphs(text):
            inside = []
            for i, m in enumerate(mentions):
                if start <= m.start and m.end <= end:
                    inside.append(m._replace(start=m.start - start, end=m.end - start))
                    placed[i] = True
            doc = make_doc(nlp, f"{pmid}#{start}", text[start:end], inside, report, misaligned=misaligned)
            doc.user_data["medlink_article"] = pmid
            yield doc
        report.documents_kept += 1
        for m, ok in zip(mentions, placed):
            if not ok:
                report.mentions_read += 1
                report.drop("mention across a paragraph break", m.where)


def _root(archive: Archive) -> str:
    """The release's top folder inside the archive ("CRAFT-5.0.2/"), or ""."""
    for name in archive.names(suffix="craft-ids-test.txt"):
        return name[: -len("articles/ids/craft-ids-test.txt")]
    raise ValueError(f"{archive.path}: no articles/ids/craft-ids-test.txt: not a CRAFT release")


def _check(text: str, start: int, end: int, covered: str, where: str) -> None:
    if not 0 <= start < end <= len(text) or text[start:end] != covered:
        raise ValueError(f"{where}: span {start}-{end} is {text[start:end]!r} in the text, the file says {covered!r}")


def _chebi(archive: Archive, name: str, text: str, label_map: Dict[str, str],
           report: ConversionReport) -> Iterator[Mention]:
    root = ET.fromstring(archive.read_bytes(name))
    classes: Dict[str, str] = {}
    for cm in root.iter("classMention"):
        mc = cm.find("mentionClass")
        if mc is not None:
            classes[cm.get("id", "")] = mc.get("id", "")
    for ann in root.iter("annotation"):
        mention = ann.find("mention")
        mid = mention.get("id", "") if mention is not None else ""
        where = f"{archive.where(name)}:{mid}"
        spans = [(int(s.get("start")), int(s.get("end"))) for s in ann.findall("span")]
        concept = classes.get(mid)
        if concept is None or not spans:
            raise ValueError(f"{where}: annotation without a class mention or a span")
        if len(spans) > 1:
            report.mentions_read += 1
            report.drop("discontinuous mention", where)
            continue
        start, end = spans[0]
        _check(text, start, end, ann.findtext("spannedText", ""), where)
        label = label_for("CHEBI", label_map, where, report)
        if label:
            yield Mention(start, end, label, concept, where)


def _mondo(archive: Archive, name: str, text: str, label_map: Dict[str, str],
           report: ConversionReport) -> Iterator[Mention]:
    root = ET.fromstring(archive.read_bytes(name))
    for ann in root.iter("annotation"):
        where = f"{archive.where(name)}:{ann.get('id', '')}"
        cls = ann.find("class")
        spans: List = ann.findall("span")
        if cls is None or not spans:
            raise ValueError(f"{where}: annotation without a class or a span")
        concept = cls.get("id", "").rsplit("/", 1)[-1].replace("_", ":", 1)
        if len(spans) > 1:
            report.mentions_read += 1
            report.drop("discontinuous mention", where)
            continue
        start, end = int(spans[0].get("start")), int(spans[0].get("end"))
        _check(text, start, end, spans[0].text or "", where)
        label = label_for("MONDO", label_map, where, report)
        if label:
            yield Mention(start, end, label, concept, where)
