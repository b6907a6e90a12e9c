"""`python -m spacy_medlink benchmark tokenizer`: how many gold mentions of
each corpus are spans of tokens, for spaCy's English tokenizer (the default
a pipeline would get), scispacy's and ours (`spacy_medlink.tokenizer`), as JSON.

A mention that does not start and end on token boundaries cannot be
predicted exactly by a token tagger, whatever the model learns: the share
of aligned gold is the ceiling a tokenizer puts on strict NER. Token counts
come with it, since a tokenizer that aligns more by splitting more makes
every component downstream slower.

Corpora converted from stand-off files (CRAFT, BioNLP-ST, DDI) carry their
original offsets (``doc.user_data["medlink_gold"]``). PubTator conversions
(BC5CDR, NCBI, GNormPlus, NLM-Gene) keep only spans, which the converter
widened to its tokenizer's boundaries where a mention split a token: those
are counted from the conversion report beside the file (``<corpus>.report.json``)
and written next to the corpus's results.
"""
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import srsly
import typer
from wasabi import msg

from ._app import benchmark_app

EXPANDED = "expanded to token boundaries"
EXPANDED_DROPPED = "expanded to token boundaries, then overlapped another mention"


def tokenizers() -> Dict[str, Optional[Callable[[str], Any]]]:
    """The tokenizers compared, by name; None for one that cannot be built here."""
    import spacy

    from ..tokenizer import biomed_nlp

    found: Dict[str, Optional[Callable[[str], Any]]] = {"spacy_en": spacy.blank("en").tokenizer, "scispacy": None}
    try:
        from scispacy.custom_tokenizer import combined_rule_tokenizer
    except ImportError:
        pass
    else:
        with warnings.catch_warnings():  # scispacy's regex: "Possible set union" (FutureWarning)
            warnings.simplefilter("ignore", FutureWarning)
            found["scispacy"] = combined_rule_tokenizer(spacy.blank("en"))
    found["medlink"] = biomed_nlp("en").tokenizer
    return found


def conversion_note(report_path: Path) -> Dict[str, Any]:
    """What the converter did to mentions that split one of its tokens, from its report."""
    if not report_path.exists():
        return {"report": None}
    report = srsly.read_json(report_path)
    return {"report": report_path.name,
            "expanded_to_token_boundaries": report.get("notes", {}).get(EXPANDED, 0),
            "dropped_after_expanding": report.get("dropped", {}).get(EXPANDED_DROPPED, 0)}


@benchmark_app.command("tokenizer")
def benchmark_tokenizer_cli(
    # fmt: off
    data: Path = typer.Option(..., "--data", help="Folder of <corpus>.spacy files (converted test splits)", exists=True, file_okay=False),
    output: Path = typer.Option(..., "--output", help="JSON file for the results"),
    corpora: Optional[List[str]] = typer.Option(None, "--corpus", metavar="NAME", help="A corpus to read (<name>.spacy in DATA); repeat it for several (default: every .spacy file)"),
    # fmt: on
) -> None:
    """Share of gold mentions whose offsets fall on token boundaries, per corpus
    and label, for spaCy's English tokenizer, scispacy's and ours, with the most
    frequent misaligned mentions and the tokens per whitespace word."""
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    from ..corpora.standoff import GOLD_KEY
    from ..crosscorpus import CORPORA, tokenizer_alignment

    names = list(corpora) if corpora else sorted(p.stem for p in data.glob("*.spacy"))
    missing = [n for n in names if not (data / f"{n}.spacy").exists()]
    if missing or not names:
        msg.fail(f"No {', '.join(f'{n}.spacy' for n in missing) or '.spacy file'} in {data}", exits=1)
    tokenize = tokenizers()
    results: Dict[str, Any] = {}
    totals = {name: [0, 0] for name, tok in tokenize.items() if tok is not None}
    for name in names:
        refs = list(DocBin().from_disk(data / f"{name}.spacy").get_docs(Vocab()))
        original = all(GOLD_KEY in doc.user_data for doc in refs)
        entry: Dict[str, Any] = {
            "description": CORPORA[name].description if name in CORPORA else None,
            "gold_offsets": "original" if original else "converted spans",
        }
        if not original:
            entry["conversion"] = conversion_note(data / f"{name}.report.json")
        for tok_name, tok in tokenize.items():
            if tok is None:
                entry[tok_name] = {"unavailable": "scispacy.custom_tokenizer cannot be imported"}
                continue
            scores = tokenizer_alignment(tok, refs)
            entry[tok_name] = scores
            totals[tok_name][0] += scores["mentions"]
            totals[tok_name][1] += scores["aligned"]
        results[name] = entry
        msg.info(f"{name}: aligned " + ", ".join(
            f"{t} {entry[t]['share']:.4f}" for t in tokenize if "share" in entry[t] and entry[t]["share"] is not None))
    summary = {tok_name: {"mentions": n, "aligned": a, "share": a / n if n else None}
               for tok_name, (n, a) in totals.items()}
    output.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output, {"data": str(data), "tokenizers": {t: tok is not None for t, tok in tokenize.items()},
                              "summary": summary, "corpora": results})
    msg.good("Aligned over all corpora: " + ", ".join(
        f"{t} {s['aligned']}/{s['mentions']}" for t, s in summary.items()), str(output))
