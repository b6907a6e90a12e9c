"""DDI corpus 2013 (SemEval-2013 task 9): drug mentions in DrugBank texts and
MEDLINE abstracts. Licensed CC BY-NC 4.0: non-commercial use only.

Reads ``DDICorpus-2013.zip`` as downloaded (or the folder it unpacks to): one
XML file per document, ``<document id>`` → ``<sentence id text>`` →
``<entity charOffset type text>``. There is no document text: it is the
sentences joined by one space, and ``charOffset`` (relative to its sentence,
end-inclusive) is shifted accordingly. The split is a folder of the release:
``Train``, ``Test/Test for DrugNER task`` (the NER test set) or
``Test/Test for DDI Extraction task`` (a disjoint set with complete entities).

Label map: ``drug``, ``brand``, ``group`` (drug classes, which BC5CDR
annotates only in part) and ``drug_n`` (substances not approved for humans)
all become Chemical. Diseases are not annotated: NER of Chemical only, no IDs.
Left out, counted: discontinuous entities and any entity whose offsets do not
give its ``text`` (one in the release's Train folder).
"""
import xml.etree.ElementTree as ET
from typing import Dict, Iterator, List, Optional

from spacy.language import Language
from spacy.tokens import Doc

from .report import ConversionReport
from .standoff import Archive, Mention, label_for, make_doc

DDI_LABEL_MAP: Dict[str, str] = {"drug": "Chemical", "brand": "Chemical", "group": "Chemical", "drug_n": "Chemical"}
DDI_SPLITS = {"train": "Train/", "test": "Test/Test for DrugNER task/", "ddi_test": "Test/Test for DDI Extraction task/"}


def read_ddi(
    path,
    nlp: Language,
    report: ConversionReport,
    *,
    split: str = "test",
    label_map: Optional[Dict[str, str]] = None,
    misaligned: str = "expand",
) -> Iterator[Doc]:
    """Docs of one folder of the DDI corpus (`split`: a key of DDI_SPLITS)."""
    if split not in DDI_SPLITS:
        raise ValueError(f"split must be one of {sorted(DDI_SPLITS)}, not {split!r}")
    label_map = dict(DDI_LABEL_MAP if label_map is None else label_map)
    archive = Archive(path)
    report.source = report.source or f"{archive.path} ({split})"
    folder = DDI_SPLITS[split]
    names = [n for n in archive.names(suffix=".xml") if folder in n]
    if not names:
        raise ValueError(f"{archive.path}: no .xml files under {folder!r}")
    for name in names:
        report.documents_read += 1
        root = ET.fromstring(archive.read_bytes(name))
        pieces: List[str] = []
        mentions: List[Mention] = []
        offset = 0
        for sentence in root.iter("sentence"):
            sent_text = sentence.get("text", "")
            for entity in sentence.iter("entity"):
                mention = _mention(archive, name, entity, sent_text, offset, label_map, report)
                if mention is not None:
                    mentions.append(mention)
            pieces.append(sent_text)
            offset += len(sent_text) + 1
        doc = make_doc(nlp, root.get("id", name), " ".join(pieces), mentions, report, misaligned=misaligned)
        report.documents_kept += 1
        yield doc


def _mention(archive: Archive, name: str, entity: ET.Element, sent_text: str, offset: int,
             label_map: Dict[str, str], report: ConversionReport) -> Optional[Mention]:
    where = f"{archive.where(name)}:{entity.get('id', '')}"
    raw = entity.get("charOffset", "")
    parts = [p.split("-") for p in raw.split(";")]
    if not parts or not all(len(p) == 2 and p[0].isdigit() and p[1].isdigit() for p in parts):
        raise ValueError(f"{where}: bad charOffset {raw!r}")
    if len(parts) > 1:
        report.mentions_read += 1
        report.drop("discontinuous mention", where)
        return None
    start, end = int(parts[0][0]), int(parts[0][1]) + 1
    if not 0 <= start < end <= len(sent_text) or sent_text[start:end] != entity.get("text", ""):
        report.mentions_read += 1
        report.drop("offsets do not give the entity's text", f"{where}: {sent_text[start:end]!r} vs {entity.get('text')!r}")
        return None
    label = label_for(entity.get("type", ""), label_map, where, report)
    if not label:
        return None
    return Mention(offset + start, offset + end, label, "", where)
