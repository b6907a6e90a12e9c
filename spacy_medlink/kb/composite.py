"""Composite mentions: "breast and ovarian cancer" denotes two concepts.

A coordination is split into its conjuncts and the shared words are
distributed over them: a shared head at the end, the last conjunct's words
after its first, given to every conjunct that lacks the head ("brain,
breast, and prostate cancer" -> "brain cancer", "breast cancer", "prostate
cancer"; "male and female breast cancer" -> "male breast cancer", ...), or a
shared modifier at the front ("colorectal adenomas and carcinoma" ->
"colorectal adenomas", "colorectal carcinoma"; "spinocerebellar ataxias 1
and 2"). Each part is linked like a mention of its own; the composite wins
when every part links to a distinct concept with more confidence than the
whole mention links to one, and its ID is the parts' IDs joined by ``|`` in
text order (the Doc contract). Where the training split annotates the very
string, its majority decides instead (NCBI reads "breast and ovarian cancer"
mostly as the hereditary syndrome, D061325, which the parts always
outscore). Conjunctions inside one concept ("X-linked immunodeficiency",
NCBI's ``+``) are not split.
"""
import re
from typing import TYPE_CHECKING, Any, List, NamedTuple, Optional, Sequence

from .names import Candidate

if TYPE_CHECKING:
    from spacy.tokens import Span

# ", and", ", or", ", and/or", ",", " and ", " or ", " and/or ", "/" (with words either side)
_COORDINATOR = re.compile(r"\s*,\s+(?:and/or|and|or)\s+|\s*,\s+|\s+(?:and/or|and|or)\s+|(?<=[A-Za-z])/(?=[A-Za-z])")


class MentionPart(NamedTuple):
    """A conjunct standing in for a Span where mentions are linked (text, label, doc, length)."""

    text: str
    label_: str
    doc: Any

    def __len__(self) -> int:
        return len(self.text.split())


def coordination_parts(text: str) -> List[str]:
    """The conjuncts of a coordinated mention with shared words distributed; [] if none."""
    conjuncts = [c.strip() for c in _COORDINATOR.split(text)]
    if len(conjuncts) < 2 or any(not c for c in conjuncts):
        return []
    words = [c.split() for c in conjuncts]
    last = words[-1]
    if len(last) > 1 and all(w[-1].lower() != last[-1].lower() for w in words[:-1]):
        # shared head at the end: "breast and ovarian cancer", "sporadic breast and kidney cancer"
        head = last[1:]
        return [" ".join(w + head) for w in words[:-1]] + [conjuncts[-1]]
    if len(words[0]) > 1 and all(len(w) == 1 for w in words[1:]):
        # shared modifier at the front: "colorectal adenomas and carcinoma", "ataxias 1 and 2"
        front = words[0][:-1]
        return [conjuncts[0]] + [" ".join(front + w) for w in words[1:]]
    return conjuncts


def composite_parts(spans: Sequence["Span"]) -> List[List[MentionPart]]:
    """Each span's parts as mentions of its document (empty where it is no coordination)."""
    return [[MentionPart(p, s.label_, s.doc) for p in coordination_parts(s.text)] for s in spans]


def choose_composite(
    whole: List[Candidate], parts: Sequence[List[Candidate]], seen_as_composite: Optional[bool] = None
) -> Optional[Candidate]:
    """The composite candidate when its weakest part beats the whole mention's top-1,
    else None. seen_as_composite: the training split's majority for the mention string
    (`MentionStats.composite_vote`), which overrides the scores where it is known."""
    if len(parts) < 2 or any(not p for p in parts) or seen_as_composite is False:
        return None
    ids = [p[0].concept_id for p in parts]
    if len(set(ids)) < len(ids):
        return None
    score = min(p[0].score for p in parts)
    if whole and whole[0].score >= score and not seen_as_composite:
        return None
    return Candidate("|".join(ids), score, " | ".join(p[0].name for p in parts))
