"""Fine-tuning the name encoder (`kb.encoder`) on a KB's synonyms.

Each step takes `batch_size` concepts with two or more names; for each, an
anchor name, a positive (another of its names) and a hard negative (a name of
another concept that the KB's own character n-gram generator ranks high for
one of the concept's names: the confusions the ranker has to settle). The
loss is InfoNCE over the batch's positives and negatives at temperature
`temperature` (a concept's own names, and the same text under another concept,
are never its negatives; each concept comes once per batch). In-batch random
negatives alone are too easy: all-MiniLM-L6-v2 starts at loss 1.4 on them and
does not move.

Give it the KB built without training mentions, so the ranker can be fit on
the encoder's cosines over the training split as over new text.
"""
import random
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .encoder import NameEncoder

if TYPE_CHECKING:
    from .candidates import CandidateGenerator


def synonym_groups(generator: "CandidateGenerator", max_names: int = 32,
                   left_out: Optional[Counter] = None) -> Tuple[List[str], List[List[str]]]:
    """The concepts with two or more distinct (lower-cased) names, and up to `max_names` of them;
    `left_out` counts the concepts with one name and the names past the cap."""
    ids: List[str] = []
    groups: List[List[str]] = []
    for concept in generator.kb:
        names = list(dict.fromkeys(n.lower() for n in (concept.name, *concept.synonyms) if n))
        if len(names) >= 2:
            ids.append(concept.concept_id)
            groups.append(names[:max_names])
            if left_out is not None and len(names) > max_names:
                left_out["names_past_cap"] += len(names) - max_names
        elif left_out is not None:
            left_out["concepts_with_one_name"] += 1
    return ids, groups


def hard_negatives(generator: "CandidateGenerator", ids: List[str], groups: List[List[str]], *,
                   queries_per_concept: int = 3, k: int = 8) -> List[List[Tuple[str, str]]]:
    """Per concept, (name, concept) of other concepts the generator ranks high for its first names."""
    queries = [(g, name) for g, names in enumerate(groups) for name in names[:queries_per_concept]]
    found = generator([name for _, name in queries], k=k)
    out: List[List[Tuple[str, str]]] = [[] for _ in groups]
    for (g, _), cands in zip(queries, found):
        out[g].extend((c.name.lower(), c.concept_id) for c in cands if c.concept_id != ids[g] and c.name)
    return out


def concept_batches(n_groups: int, size: int, rng: random.Random) -> Iterator[List[int]]:
    """Endless batches of `size` distinct group indices, each group once per pass (a pass's
    leftovers are completed from the next pass without repeating them)."""
    order: List[int] = []
    while True:
        if len(order) < size:
            left = set(order)
            fresh = [g for g in range(n_groups) if g not in left]
            rng.shuffle(fresh)
            order.extend(fresh)
        batch, order = order[:size], order[size:]
        yield batch


def negative_mask(row_ids: Sequence[str], row_names: Sequence[Sequence[str]], col_ids: Sequence[str],
                  col_texts: Sequence[str]) -> List[List[bool]]:
    """mask[i][c]: column c may not be a negative of row i (c is not i's own positive column, and
    it is a name of i's concept, or the same text: synonyms shared by two concepts)."""
    mask = []
    for i, (rid, names) in enumerate(zip(row_ids, row_names)):
        own = set(names)
        mask.append([c != i and (cid == rid or text in own) for c, (cid, text) in enumerate(zip(col_ids, col_texts))])
    return mask


def fit_encoder(
    encoder: NameEncoder,
    generator: "CandidateGenerator",
    *,
    steps: int = 300,
    batch_size: int = 128,
    learn_rate: float = 2e-5,
    temperature: float = 0.05,
    seed: int = 0,
    log: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> Dict[str, Any]:
    """Fine-tune `encoder` in place on `generator.kb`'s synonyms; returns a report."""
    import torch

    rng = random.Random(seed)
    torch.manual_seed(seed)
    start = time.perf_counter()
    left_out: Counter = Counter()
    ids, groups = synonym_groups(generator, left_out=left_out)
    n = len(groups)
    if n < 2:
        raise ValueError(f"The KB has {n} concepts with two or more names: nothing to fine-tune the encoder on")
    negatives = hard_negatives(generator, ids, groups)
    report: Dict[str, Any] = {"concepts": n, "names": sum(map(len, groups)), "left_out": dict(left_out),
                              "hard_negatives": sum(map(len, negatives)), "steps": steps,
                              "batch_size": batch_size, "learn_rate": learn_rate, "temperature": temperature,
                              "seed": seed, "log": []}
    model = encoder.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=learn_rate, weight_decay=0.01)
    size = min(batch_size, n)
    batches = concept_batches(n, size, rng)
    model.train()
    try:
        for step in range(1, steps + 1):
            batch = next(batches)
            pairs = [rng.sample(groups[g], 2) for g in batch]
            negs = [rng.choice(negatives[g]) if negatives[g] else (rng.choice(groups[(g + 1) % n]), ids[(g + 1) % n])
                    for g in batch]
            texts = [p for _, p in pairs] + [t for t, _ in negs]
            anchors = encoder.forward([a for a, _ in pairs])
            logits = anchors @ encoder.forward(texts).T / temperature
            mask = negative_mask([ids[g] for g in batch], [groups[g] for g in batch],
                                 [ids[g] for g in batch] + [nid for _, nid in negs], texts)
            logits = logits.masked_fill(torch.tensor(mask), -1e4)
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(size))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 20 == 0 or step == steps:
                entry = {"step": step, "loss": round(float(loss.item()), 4), "seconds": round(time.perf_counter() - start, 1)}
                report["log"].append(entry)
                if log is not None:
                    log(entry)
    finally:
        model.eval()
        encoder.clear_cache()
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report
