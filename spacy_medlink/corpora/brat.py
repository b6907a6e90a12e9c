"""brat / BioNLP shared-task stand-off (``.txt`` + ``.a1``), e.g. BioNLP-ST 2013
Cancer Genetics.

Each document is ``<name>.txt`` and ``<name>.a1`` (entities:
``T<k><TAB><Type> <start> <end>[;<start> <end>...]<TAB><text>``, 0-based,
end-exclusive character offsets); the event file ``.a2`` is not read. The
split is a folder of the release (``original-data/{train,devel,test}``), read
from the folder or the .tar.gz as downloaded.

The Cancer Genetics label map keeps ``Simple_chemical`` as Chemical, ``Cancer``
as Disease (a *partial* disease annotation: only cancers and tumours, so
disease precision cannot be scored on it) and ``Gene_or_gene_product`` as Gene
(to count gene symbols that a model calls Chemical); the other 13 types are
left out, counted. No IDs: NER only.
"""
from typing import Dict, Iterator, Optional

from spacy.language import Language
from spacy.tokens import Doc

from .report import ConversionReport
from .standoff import Archive, Mention, label_for, make_doc

BIONLP13CG_TYPES = (
    "Amino_acid", "Anatomical_system", "Cancer", "Cell", "Cellular_component",
    "Developing_anatomical_structure", "Gene_or_gene_product", "Immaterial_anatomical_entity",
    "Multi-tissue_structure", "Organ", "Organism", "Organism_subdivision", "Organism_substance",
    "Pathological_formation", "Simple_chemical", "Tissue",
)
BIONLP13CG_LABEL_MAP: Dict[str, str] = {
    **{t: "" for t in BIONLP13CG_TYPES},
    "Simple_chemical": "Chemical",
    "Cancer": "Disease",
    "Gene_or_gene_product": "Gene",
}


def read_brat(
    path,
    nlp: Language,
    report: ConversionReport,
    *,
    folder: str,
    label_map: Optional[Dict[str, str]] = None,
    misaligned: str = "expand",
) -> Iterator[Doc]:
    """Docs of the ``.txt``/``.a1`` pairs under `folder` (a path inside the
    archive, e.g. "original-data/test/"), in name order."""
    label_map = dict(BIONLP13CG_LABEL_MAP if label_map is None else label_map)
    archive = Archive(path)
    report.source = report.source or f"{archive.path} ({folder})"
    folder = folder.strip("/")
    texts = [n for n in archive.names(suffix=".txt") if ("/" + n.rsplit("/", 1)[0]).endswith("/" + folder)]
    a1_names = set(archive.names(suffix=".a1"))
    if not texts:
        raise ValueError(f"{archive.path}: no .txt files in a folder named {folder!r}")
    for name in texts:
        stem = name[: -len(".txt")]
        a1 = f"{stem}.a1"
        if a1 not in a1_names:
            raise ValueError(f"{archive.where(name)}: no {a1.rsplit('/', 1)[-1]} beside it")
        report.documents_read += 1
        text = archive.read_text(name)
        mentions = list(_read_a1(archive, a1, text, label_map, report))
        doc_id = stem.rsplit("/", 1)[-1]
        yield make_doc(nlp, doc_id, text, mentions, report, misaligned=misaligned)
        report.documents_kept += 1


def _read_a1(archive: Archive, name: str, text: str, label_map: Dict[str, str],
             report: ConversionReport) -> Iterator[Mention]:
    for i, line in enumerate(archive.read_text(name).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{archive.where(name)}:{i}"
        fields = line.split("\t")
        if not fields[0].startswith("T"):
            continue  # normalizations, notes: not entities
        if len(fields) < 3:
            raise ValueError(f"{where}: expected 'T<k><TAB><Type> <start> <end><TAB><text>', got {line[:80]!r}")
        type_, _, offsets = fields[1].partition(" ")
        pieces = [p.split() for p in offsets.split(";")]
        if not pieces or not all(len(p) == 2 and p[0].isdigit() and p[1].isdigit() for p in pieces):
            raise ValueError(f"{where}: bad offsets {offsets!r}")
        if len(pieces) > 1:
            report.mentions_read += 1
            report.drop("discontinuous mention", where)
            continue
        start, end = int(pieces[0][0]), int(pieces[0][1])
        if not 0 <= start < end <= len(text) or text[start:end] != fields[2]:
            raise ValueError(f"{where}: span {start}-{end} is {text[start:end]!r} in the text, the file says {fields[2]!r}")
        label = label_for(type_, label_map, where, report)
        if label:
            yield Mention(start, end, label, "", where)
