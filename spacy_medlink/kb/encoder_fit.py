"""Fine-tuning the name encoder (`kb.encoder`) on a KB's synonyms.

Each step takes `batch_size` concepts with two or more names; for each, an
anchor name, a positive (another of its names) and a hard negative (a name of
another concept that the KB's own character n-gram generator ranks high for
one of the concept's names: the confusions the ranker has to settle). The
loss is InfoNCE over the batch's positives and negatives at temperature
`temperature` (a concept's own names are never its negatives). In-batch random
negatives alone are too easy: all-MiniLM-L6-v2 starts at loss 1.4 on them and
does not move.

Give it the KB built without training mentions, so the ranker can be fit on
the encoder's cosines over the training split as over new text.
"""
import random
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from .encoder import NameEncoder, fit_texts

if TYPE_CHECKING:
    from .candidates import CandidateGenerator


def synonym_groups(generator: "CandidateGenerator", max_names: int = 32) -> Tuple[List[str], List[List[str]]]:
    """The concepts with two or more distinct (lower-cased) names, and those names."""
    ids: List[str] = []
    groups: List[List[str]] = []
    for concept in generator.kb:
        names = fit_texts((concept.name, *concept.synonyms))
        if len(names) >= 2:
            ids.append(concept.concept_id)
            groups.append(names[:max_names])
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
    ids, groups = synonym_groups(generator)
    if len(groups) < 2:
        raise ValueError(f"The KB has {len(groups)} concepts with two or more names: nothing to fine-tune the encoder on")
    negatives = hard_negatives(generator, ids, groups)
    report: Dict[str, Any] = {"concepts": len(groups), "names": sum(map(len, groups)),
                              "hard_negatives": sum(map(len, negatives)), "steps": steps,
                              "batch_size": batch_size, "learn_rate": learn_rate, "temperature": temperature,
                              "seed": seed, "log": []}
    model = encoder.model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learn_rate, weight_decay=0.01)
    order: List[int] = []
    size = min(batch_size, len(groups))
    for step in range(1, steps + 1):
        if len(order) < size:
            fresh = list(range(len(groups)))
            rng.shuffle(fresh)
            order.extend(fresh)
        batch, order = order[:size], order[size:]
        pairs = [rng.sample(groups[g], 2) for g in batch]
        negs = [rng.choice(negatives[g]) if negatives[g] else (rng.choice(groups[(g + 1) % len(groups)]), "")
                for g in batch]
        anchors = encoder.forward([a for a, _ in pairs])
        others = encoder.forward([p for _, p in pairs] + [n for n, _ in negs])
        logits = anchors @ others.T / temperature
        own = torch.tensor([[nid == ids[g] for _, nid in negs] for g in batch])
        logits = torch.cat([logits[:, :size], logits[:, size:].masked_fill(own, -1e4)], dim=1)
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(size))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 20 == 0 or step == steps:
            entry = {"step": step, "loss": round(float(loss.item()), 4), "seconds": round(time.perf_counter() - start, 1)}
            report["log"].append(entry)
            if log is not None:
                log(entry)
    model.eval()
    encoder.clear_cache()
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report
