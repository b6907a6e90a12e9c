"""What each model returns and its pipe reads: padded scores as named tuples.

The builders (``ml/X.py``), the torch modules (``ml/X_module.py``) and the pipes
all speak these, so they live here, apart from torch: the pipes and builders are
imported whenever spaCy creates a pipeline, torch only when a model is built.
Each tuple also carries the gradients in backprop (None = no gradient).
"""
from typing import Any, List, NamedTuple, Tuple

from spacy.tokens import Doc


class JointScores(NamedTuple):
    """Padded per-token scores for a batch of docs (B docs, T = longest doc).

    mer: (B, T, n_tags) MER emissions; men: (B, T, n_concepts + 1) MEN
    logits, column 0 = nil; mer_aux, men_aux: the first-guess logits of the
    feedback cycle (None without one); start, transitions, end: CRF scores
    with forbidden moves at NEG (None without a CRF); lengths: (B,) ints.
    The same structure carries the gradients in backprop (None = no gradient).

    At inference (`model.predict`) the module decodes MER itself and scores
    MEN only where it is needed: ``paths`` (B, T) best valid MER tags (-1 on
    padding); ``men_probs`` (n, n_concepts + 1) MEN probabilities of the n
    tokens inside predicted spans; ``men_rows`` (B, T) each token's row in
    ``men_probs`` (-1 outside spans). ``men`` and ``men_aux`` are None then.
    """

    mer: Any
    men: Any
    mer_aux: Any = None
    men_aux: Any = None
    start: Any = None
    transitions: Any = None
    end: Any = None
    lengths: Any = None
    paths: Any = None
    men_probs: Any = None
    men_rows: Any = None




class GatedScores(NamedTuple):
    """Model output (B docs, T = longest doc, P pairs); also carries gradients.

    ner: (B, T, n_tags) emissions; start, transitions, end: CRF scores (None
    without a CRF); mid: (P,) logits (None without the mid task); high:
    (P, T, 3) B/I/O logits (None without the high task); attention: (P, T)
    weights (not differentiated); lengths: (B,) ints; pair_doc: (P,) ints.
    """

    ner: Any
    start: Any = None
    transitions: Any = None
    end: Any = None
    mid: Any = None
    high: Any = None
    attention: Any = None
    lengths: Any = None
    pair_doc: Any = None




class HierScores(NamedTuple):
    """Scores for B docs padded to T tokens.

    Training: mr (B, T, n_mr) MR emissions; et: PT (B, T, n_et) ET
    emissions, PE (S, n_types) logits of the given spans; el: PT (B, T, C)
    or PE (S, C) logits over the given columns; the CRF scores of MR and
    (PT) ET with forbidden moves at NEG. None where a task is absent.

    Inference: mr_paths, et_paths (B, T) best valid tag paths (-1 on
    padding); spans (S, 3) MR's spans (PE); et_probs (S, n_types) (PE);
    el_probs (n, n_concepts + 1) EL probabilities of the tokens inside
    predicted entities (PT: el_rows (B, T) gives each token's row, -1
    outside) or of the spans (PE).

    columns: the EL columns of the input (None: all concepts), so that a
    loss over these scores maps its targets the way the forward pass did.
    """

    mr: Any = None
    et: Any = None
    el: Any = None
    mr_start: Any = None
    mr_transitions: Any = None
    mr_end: Any = None
    et_start: Any = None
    et_transitions: Any = None
    et_end: Any = None
    lengths: Any = None
    mr_paths: Any = None
    et_paths: Any = None
    spans: Any = None
    et_probs: Any = None
    el_probs: Any = None
    el_rows: Any = None
    columns: Any = None



NestedInput = Tuple[List[Doc], List[Doc]]
"""The nested recognizer's input: the sentences, and one query Doc per entity type in label order."""


class NestedScores(NamedTuple):
    """Padded scores for B sentences, K types, T = longest sentence.

    emissions (B, K, T, n_tags); biaffine (B, K, T, L, 2) logits of the span
    from token t to t + l (None when not computed); start, transitions, end:
    CRF scores with forbidden moves at NEG; loss_w (2,): the raw loss
    weights; lengths (B,) ints. The same structure carries the gradients in
    backprop (None = no gradient).
    """

    emissions: Any
    biaffine: Any = None
    start: Any = None
    transitions: Any = None
    end: Any = None
    loss_w: Any = None
    lengths: Any = None
