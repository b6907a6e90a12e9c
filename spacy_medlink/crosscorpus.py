"""The cross-corpus benchmark: a pipeline scored on corpora annotated by other
groups, each under its own label map and annotation scope.

In-domain test scores say how well a model learned its corpus; users annotate
other text. Each corpus here is scored only on what it annotates completely:
a type a corpus does not annotate (diseases in DDI) is not scored there, a
type it annotates in part (BioNLP-CG's Cancer, a subset of diseases) gives
recall only, and gene corpora count how many gene and protein mentions a
model calls Chemical or Disease. NER is strict (character offsets and label
equal) against the corpus's original offsets (``doc.user_data["medlink_gold"]``,
see `corpora.standoff`), so a tokenizer that splits a mention costs what it
costs. Normalization is scored where the IDs are MeSH or MEDIC, with the
shared scorer (`scoring.score_nen`).
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from spacy.language import Language
from spacy.scorer import PRFScore
from spacy.tokens import Doc
from spacy.training import Example

from .corpora.standoff import gold_mentions
from .scoring import score_nen

_Span = Tuple[int, int, str]
TOP_ERRORS = 15


@dataclass(frozen=True)
class CorpusSpec:
    """What a benchmark corpus annotates, and so what can be scored on it."""

    description: str
    complete: Tuple[str, ...] = ()  # labels annotated exhaustively: P, R, F
    partial: Tuple[str, ...] = ()  # labels annotated in part: recall only
    gene_label: Optional[str] = None  # gold label of gene/protein mentions, if annotated
    ids: bool = False  # concept IDs are MeSH / MEDIC: normalization is scored
    license: str = ""
    label_map: Dict[str, str] = field(default_factory=dict)  # corpus type -> label, for the docs


CORPORA: Dict[str, CorpusSpec] = {
    "bc5cdr": CorpusSpec(
        "BC5CDR test: 500 PubMed abstracts (chemical-disease relations)", ("Chemical", "Disease"), ids=True,
        license="free for research (BioCreative)", label_map={"Chemical": "Chemical", "Disease": "Disease"}),
    "ncbi": CorpusSpec(
        "NCBI Disease test: 100 PubMed abstracts", ("Disease",), ids=True, license="public domain (NCBI)",
        label_map={"SpecificDisease": "Disease", "DiseaseClass": "Disease", "Modifier": "Disease",
                   "CompositeMention": "Disease"}),
    "craft": CorpusSpec(
        "CRAFT v5.0.2 test: 30 PMC full-text articles (mouse genetics), one Doc per paragraph",
        ("Chemical", "Disease"), license="CC BY 3.0 (annotations)",
        label_map={"ChEBI class": "Chemical", "MONDO class": "Disease"}),
    "bionlp13cg": CorpusSpec(
        "BioNLP-ST 2013 Cancer Genetics test: 200 PubMed abstracts (cancer biology)", ("Chemical",),
        partial=("Disease",), gene_label="Gene", license="CC BY-SA 3.0 (annotations)",
        label_map={"Simple_chemical": "Chemical", "Cancer": "Disease (cancers only: recall)",
                   "Gene_or_gene_product": "Gene (counted, not scored)"}),
    "ddi": CorpusSpec(
        "DDI corpus 2013, DrugNER test: 54 DrugBank texts and 58 MEDLINE abstracts", ("Chemical",),
        license="CC BY-NC 4.0 (non-commercial)",
        label_map={"drug": "Chemical", "brand": "Chemical", "group": "Chemical", "drug_n": "Chemical"}),
    "gnormplus": CorpusSpec(
        "GNormPlus test (BioCreative II GN test): 262 PubMed abstracts, genes and gene families",
        gene_label="Gene", license="not stated (freely available)",
        label_map={"Gene": "Gene", "FamilyName": "Gene"}),
    "nlmgene": CorpusSpec(
        "NLM-Gene test: 100 PubMed abstracts, genes of many species", gene_label="Gene",
        license="CC0 1.0 (per BigBio)", label_map={"Gene": "Gene", "FamilyName": "Gene"}),
}


def _prf(score: PRFScore) -> Dict[str, Any]:
    return {"p": score.precision, "r": score.recall, "f": score.fscore,
            "tp": score.tp, "fp": score.fp, "fn": score.fn}


def _overlaps(a: _Span, b: _Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score_corpus(
    nlp: Language,
    refs: Sequence[Doc],
    spec: CorpusSpec,
    *,
    train_names: Optional[Set[str]] = None,
    batch_size: int = 32,
) -> Dict[str, Any]:
    """The scores of `nlp` on one corpus (`refs`: its converted gold Docs)."""
    per_type = {label: PRFScore() for label in spec.complete}
    partial = {label: [0, 0] for label in spec.partial}  # gold, found
    genes = {"gold": 0, "as_chemical_exact": 0, "as_chemical_overlap": 0, "as_disease_overlap": 0}
    gene_fp_chemical = 0
    aligned = [0, 0]
    unseen = {label: [0, 0] for label in spec.complete + spec.partial}
    false_pos: Dict[str, Counter] = {label: Counter() for label in spec.complete}
    missed: Dict[str, Counter] = {label: Counter() for label in spec.complete + spec.partial}
    examples: List[Example] = []
    texts = [doc.text for doc in refs]
    for ref, pred in zip(refs, nlp.pipe(texts, batch_size=batch_size)):
        gold = gold_mentions(ref)
        tokens = nlp.make_doc(ref.text)
        aligned[0] += len(gold)
        aligned[1] += sum(is_aligned(tokens, m) for m in gold)
        predicted = {(e.start_char, e.end_char, e.label_) for e in pred.ents}
        gene_spans = [(s, e, label) for s, e, label, _ in gold if label == spec.gene_label]
        for label, score in per_type.items():
            g = {(s, e, lab) for s, e, lab, _ in gold if lab == label}
            p = {m for m in predicted if m[2] == label}
            score.score_set(p, g)
            for m in p - g:
                false_pos[label][ref.text[m[0]:m[1]]] += 1
                if label == "Chemical" and any(_overlaps(m, gs) for gs in gene_spans):
                    gene_fp_chemical += 1
            for m in g - p:
                missed[label][ref.text[m[0]:m[1]]] += 1
        for label, counts in partial.items():
            g = {(s, e, lab) for s, e, lab, _ in gold if lab == label}
            counts[0] += len(g)
            counts[1] += len(g & predicted)
            for m in g - predicted:
                missed[label][ref.text[m[0]:m[1]]] += 1
        if train_names is not None:
            for s, e, label, _ in gold:
                if label in unseen and ref.text[s:e].lower() not in train_names:
                    unseen[label][0] += 1
                    unseen[label][1] += (s, e, label) in predicted
        chem = [m for m in predicted if m[2] == "Chemical"]
        dis = [m for m in predicted if m[2] == "Disease"]
        for gs in gene_spans:
            genes["gold"] += 1
            genes["as_chemical_exact"] += (gs[0], gs[1], "Chemical") in predicted
            genes["as_chemical_overlap"] += any(_overlaps(gs, m) for m in chem)
            genes["as_disease_overlap"] += any(_overlaps(gs, m) for m in dis)
        if spec.ids:
            examples.append(Example(_keep(pred, spec.complete), _keep(ref, spec.complete)))
    out: Dict[str, Any] = {"docs": len(refs), "words": sum(len(d) for d in refs)}
    if per_type:
        total = sum(per_type.values(), PRFScore())
        out["ner"] = {"p": total.precision, "r": total.recall, "f": total.fscore,
                      "per_type": {label: _prf(s) for label, s in per_type.items()}}
        out["false_positives"] = {label: c.most_common(TOP_ERRORS) for label, c in false_pos.items()}
    if partial:
        out["partial_recall"] = {label: {"gold": g, "found": f, "r": f / g if g else None}
                                 for label, (g, f) in partial.items()}
    if per_type or partial:
        out["missed"] = {label: c.most_common(TOP_ERRORS) for label, c in missed.items()}
    if spec.gene_label:
        n = genes["gold"]
        out["genes"] = {**genes, **{f"{k}_rate": genes[k] / n if n else None for k in genes if k != "gold"}}
        if "Chemical" in per_type:
            fp = per_type["Chemical"].fp
            out["genes"]["chemical_false_positives_on_genes"] = gene_fp_chemical
            out["genes"]["chemical_false_positives"] = fp
    if spec.ids and examples:
        nen = score_nen(examples, id_resolver=id_resolver(nlp))
        out["nen"] = {k: nen[k] for k in ("nen_p", "nen_r", "nen_f", "nen_doc_p", "nen_doc_r", "nen_doc_f")}
    out["gold_aligned_to_tokens"] = {"mentions": aligned[0], "aligned": aligned[1],
                                     "share": aligned[1] / aligned[0] if aligned[0] else None}
    if train_names is not None:
        out["unseen_name_recall"] = {label: {"gold": g, "found": f, "r": f / g if g else None}
                                     for label, (g, f) in unseen.items()}
    return out


def is_aligned(tokens: Doc, mention: Tuple[int, int, str, str]) -> bool:
    """Whether a gold mention (start, end, ...) is a span of `tokens`: both of its
    character offsets fall on token boundaries (`Doc.char_span`, strict)."""
    return tokens.char_span(mention[0], mention[1]) is not None


def tokenizer_alignment(
    make_doc: Callable[[str], Doc], refs: Iterable[Doc], *, top: int = TOP_ERRORS, context: int = 30,
) -> Dict[str, Any]:
    """How many of the gold mentions of `refs` (original offsets, `gold_mentions`)
    are spans of the tokens `make_doc` cuts their text into, overall and per
    label; the `top` most frequent misaligned mention strings, each with its
    first occurrence's covering tokens and `context` characters either side;
    and the token count (whitespace tokens left out) against whitespace-separated
    words (over-splitting costs speed). Every mention read is counted: mentions = aligned + misaligned."""
    per_label: Dict[str, List[int]] = {}  # label -> [mentions, aligned]
    misses: Counter = Counter()
    example: Dict[Tuple[str, str], Dict[str, Any]] = {}
    docs = tokens_n = words = 0
    for ref in refs:
        text = ref.text
        tokens = make_doc(text)
        docs += 1
        tokens_n += sum(not t.is_space for t in tokens)
        words += len(text.split())
        for mention in gold_mentions(ref):
            start, end, label, _ = mention
            counts = per_label.setdefault(label, [0, 0])
            counts[0] += 1
            if is_aligned(tokens, mention):
                counts[1] += 1
                continue
            key = (text[start:end], label)
            misses[key] += 1
            if key not in example:
                cover = tokens.char_span(start, end, alignment_mode="expand")
                example[key] = {
                    "tokens": [t.text for t in cover] if cover is not None else [],
                    "context": f"{text[max(0, start - context):start]}[{text[start:end]}]{text[end:end + context]}",
                }
    mentions = sum(n for n, _ in per_label.values())
    aligned = sum(a for _, a in per_label.values())
    return {
        "docs": docs, "mentions": mentions, "aligned": aligned, "misaligned": mentions - aligned,
        "share": aligned / mentions if mentions else None,
        "per_label": {label: {"mentions": n, "aligned": a, "share": a / n if n else None}
                      for label, (n, a) in sorted(per_label.items())},
        "tokens": tokens_n, "whitespace_words": words,
        "tokens_per_word": tokens_n / words if words else None,
        "top_misaligned": [{"text": m_text, "label": label, "count": n, **example[(m_text, label)]}
                           for (m_text, label), n in misses.most_common(top)],
    }


def id_resolver(nlp: Language) -> Optional[Callable[[str], str]]:
    """The KB's ID resolution of the pipeline's linking pipe, as its own scorer
    uses it (an ID the KB has merged into another counts as that one)."""
    for _, pipe in nlp.pipeline:
        generator = getattr(pipe, "generator", None)
        if generator is not None:
            return generator.kb.resolve
    return None


def _keep(doc: Doc, labels: Iterable[str]) -> Doc:
    """A copy of `doc` whose ents are only those with `labels`."""
    labels = set(labels)
    copy = doc.copy()
    copy.ents = [e for e in doc.ents if e.label_ in labels]
    return copy


def summarize(results: Dict[str, Dict[str, Any]], in_domain: Iterable[str]) -> Dict[str, Any]:
    """Means over the corpora the model did not train on: NER F of each corpus
    with completely annotated types, normalization F of each corpus with IDs."""
    in_domain = set(in_domain)
    held_out = {name: r for name, r in results.items() if name not in in_domain}
    ner = {name: r["ner"]["f"] for name, r in held_out.items() if "ner" in r}
    nen = {name: r["nen"]["nen_f"] for name, r in held_out.items() if "nen" in r}
    nen_doc = {name: r["nen"]["nen_doc_f"] for name, r in held_out.items() if "nen" in r}
    genes = {name: r["genes"]["as_chemical_overlap_rate"] for name, r in held_out.items() if "genes" in r}

    def mean(values: Dict[str, float]) -> Optional[float]:
        return sum(values.values()) / len(values) if values else None

    return {
        "in_domain": sorted(in_domain & set(results)),
        "held_out": sorted(held_out),
        "mean_ner_f": mean(ner), "ner_f": ner,
        "mean_nen_f": mean(nen), "nen_f": nen,
        "mean_nen_doc_f": mean(nen_doc), "nen_doc_f": nen_doc,
        "mean_genes_as_chemical_rate": mean(genes), "genes_as_chemical_rate": genes,
    }
