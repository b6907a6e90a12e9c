"""What `annotate` writes: one annotated record per input record, in JSONL, PubTator or BioC XML.

A record's annotations are plain dicts (`annotations_of`): `doc.ents` with
label, `kb_id`, `medlink_score` and `medlink_candidates`, and every span
group of `doc.spans` (nested recognizers' entities, the hierarchical
linker's mentions). Offsets are characters of the record's text; PubTator and
BioC keep their passages, so offsets land where the input had them.
"""
import json
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from .records import Record

OUTPUT_FORMATS = {"jsonl": ".jsonl", "pubtator": ".pubtator", "bioc-xml": ".bioc.xml"}
Annotated = Tuple[Record, Dict[str, Any]]


def span_dict(span, offset: int = 0) -> Dict[str, Any]:
    out: Dict[str, Any] = {"start": span.start_char + offset, "end": span.end_char + offset, "text": span.text,
                           "label": span.label_, "kb_id": span.kb_id_}
    if span.has_extension("medlink_score"):
        out["score"] = span._.medlink_score
        out["candidates"] = span._.medlink_candidates
    return out


def doc_annotations(doc) -> Dict[str, Any]:
    """A Doc's entities and span groups as plain dicts, offsets from the Doc's start:
    what a worker process sends back (small and quick to pickle, unlike the Doc)."""
    return {"entities": [span_dict(e) for e in doc.ents],
            "spans": {key: [span_dict(s) for s in group] for key, group in doc.spans.items()}}


def merge_sections(sections: Sequence[Tuple[int, Dict[str, Any]]]) -> Dict[str, Any]:
    """One record's annotations from its (offset, doc_annotations) sections."""
    ents: List[Dict[str, Any]] = []
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for offset, ann in sections:
        ents.extend(_shifted(e, offset) for e in ann["entities"])
        for key, group in ann["spans"].items():
            groups.setdefault(key, []).extend(_shifted(s, offset) for s in group)
    return {"entities": ents, "spans": groups, "sections": len(sections)}


def _shifted(span: Dict[str, Any], offset: int) -> Dict[str, Any]:
    return {**span, "start": span["start"] + offset, "end": span["end"] + offset} if offset else span


def write_chunk(path: Path, fmt: str, items: Sequence[Annotated]) -> None:
    """Write `items` to `path` in `fmt` (the caller renames it into place)."""
    if fmt == "jsonl":
        with path.open("w", encoding="utf8") as f:
            for record, ann in items:
                f.write(json.dumps({"id": record.id, **ann}, ensure_ascii=False) + "\n")
    elif fmt == "pubtator":
        with path.open("w", encoding="utf8") as f:
            for record, ann in items:
                f.write(_pubtator(record, ann))
    elif fmt == "bioc-xml":
        _bioc(path, items)
    else:
        raise ValueError(f"Unknown output format {fmt!r} (one of {', '.join(OUTPUT_FORMATS)})")


def chunk_entity_types(path: Path, fmt: str) -> Counter:
    """Entities per type in a chunk `write_chunk` wrote: for a resumed run's summary when
    the chunk's manifest does not count them."""
    counts: Counter = Counter()
    if fmt == "jsonl":
        with path.open(encoding="utf8") as f:
            counts.update(e["label"] for line in f if line.strip() for e in json.loads(line)["entities"])
    elif fmt == "pubtator":
        with path.open(encoding="utf8") as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if len(fields) == 6 and fields[1].isdigit() and fields[2].isdigit():
                    counts[fields[4]] += 1
    elif fmt == "bioc-xml":
        import bioc

        with path.open(encoding="utf8") as f:
            collection = bioc.load(f)
        counts.update(a.infons["type"] for d in collection.documents for p in d.passages for a in p.annotations)
    else:
        raise ValueError(f"Unknown output format {fmt!r} (one of {', '.join(OUTPUT_FORMATS)})")
    return counts


def _pubtator(record: Record, ann: Dict[str, Any]) -> str:
    passages = list(record.passages) or [("t", 0)]
    lines = []
    for i, (kind, offset) in enumerate(passages):
        end = passages[i + 1][1] - 1 if i + 1 < len(passages) else len(record.text)
        lines.append(f"{record.id}|{kind[:1] or 't'}|{_one_line(record.text[offset:end])}")
    for e in ann["entities"]:
        lines.append("\t".join([record.id, str(e["start"]), str(e["end"]), _one_line(e["text"]).replace("\t", " "), e["label"], e["kb_id"]]))
    return "\n".join(lines) + "\n\n"


def _one_line(text: str) -> str:
    """PubTator is line-based: a line break inside a passage becomes a space (offsets unchanged)."""
    return text.replace("\r", " ").replace("\n", " ")


def _bioc(path: Path, items: Sequence[Annotated]) -> None:
    import bioc

    collection = bioc.BioCCollection()
    collection.source = "spacy-medlink"
    for record, ann in items:
        document = bioc.BioCDocument()
        document.id = record.id
        passages = list(record.passages) or [("", 0)]
        n = 0
        for i, (kind, offset) in enumerate(passages):
            end = passages[i + 1][1] - 1 if i + 1 < len(passages) else len(record.text)
            passage = bioc.BioCPassage()
            passage.offset = offset
            passage.text = record.text[offset:end]
            if kind:
                passage.infons["type"] = kind
            for e in ann["entities"]:
                if offset <= e["start"] < max(end, offset + 1):
                    a = bioc.BioCAnnotation()
                    a.id = str(n)
                    n += 1
                    a.text = e["text"]
                    a.infons["type"] = e["label"]
                    if e["kb_id"]:
                        a.infons["identifier"] = e["kb_id"]
                    if e.get("score") is not None:
                        a.infons["score"] = f"{e['score']:.4f}"
                    a.add_location(bioc.BioCLocation(e["start"], e["end"] - e["start"]))
                    passage.add_annotation(a)
            document.add_passage(passage)
        collection.add_document(document)
    with path.open("w", encoding="utf8") as f:
        bioc.dump(collection, f)
