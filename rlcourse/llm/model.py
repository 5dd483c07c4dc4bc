"""The lab's language model: a character tokenizer and a small GPT-2 built from scratch.

* :func:`build_tokenizer` makes a real ``transformers`` tokenizer (``PreTrainedTokenizerFast``
  over a ``tokenizers`` word-level model that splits text into characters) with ``<pad>`` and
  ``<eos>`` tokens; it saves and loads like any hub tokenizer.
* :func:`build_model` makes a ``GPT2LMHeadModel`` from a :class:`ModelConfig` (about 0.8M
  parameters with the defaults), so ``generate``, ``save_pretrained`` and ``from_pretrained``
  work unchanged.
* :func:`load_pretrained` takes the same path for a real checkpoint, by local folder or hub
  name (offline with ``HF_HUB_OFFLINE=1``), and says what it tried when nothing is found.
* :func:`encode_prompts` and :func:`generate` are the boundary where text enters and leaves the
  model; they reject characters outside the vocabulary and prompts longer than the context.

Shapes: B prompts, P prompt tokens, T = P + new tokens.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from rlcourse.llm.task import END
from rlcourse.validation import check_in_range, check_positive_int

Tensor = torch.Tensor
PAD, UNK = "<pad>", "<unk>"
CHARS = "0123456789+="


class CheckpointNotFoundError(FileNotFoundError):
    """No checkpoint was found; the message lists every folder and hub name that was tried."""


@dataclass(frozen=True)
class ModelConfig:
    """Size of the lab's GPT-2. ``n_positions`` is the context: prompt plus response tokens."""

    n_embd: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_positions: int = 16

    def __post_init__(self) -> None:
        for name in ("n_embd", "n_layer", "n_head", "n_positions"):
            check_positive_int(getattr(self, name), name)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")

    def to_dict(self) -> dict:
        """The fields as a plain dict (what the checkpoint cache hashes)."""
        return asdict(self)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars while saving or loading small checkpoints."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


def build_tokenizer(chars: str = CHARS, max_length: int = 16):
    """A character-level ``PreTrainedTokenizerFast``: ids 0-2 are <pad>, <eos>, <unk>, then
    one id per character of ``chars``. ``max_length`` is stored as ``model_max_length``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if not chars or len(set(chars)) != len(chars):
        raise ValueError(f"chars must be non-empty and without repeats, got {chars!r}")
    vocab = {tok: i for i, tok in enumerate([PAD, END, UNK, *chars])}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=END,
                                   unk_token=UNK,
                                   model_max_length=check_positive_int(max_length, "max_length"))


def is_char_tokenizer(tokenizer) -> bool:
    """True if every non-special token of ``tokenizer`` is a single character."""
    special = set(tokenizer.all_special_tokens)
    return all(len(tok) == 1 for tok in tokenizer.get_vocab() if tok not in special)


def check_text(tokenizer, texts: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the characters of ``texts`` outside a character vocabulary.

    Tokenizers that are not character-level (e.g. a real GPT-2's byte-level BPE) cover any text,
    so only the type is checked for them.
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a list of str")
    if not is_char_tokenizer(tokenizer):
        return
    known = set(tokenizer.get_vocab())
    bad = sorted({c for t in texts for c in t.replace(END, "") if c not in known})
    if bad:
        raise ValueError(f"characters outside the vocabulary: {bad}; the tokenizer knows "
                         f"{''.join(sorted(known - set(tokenizer.all_special_tokens)))!r}")


def encode_prompts(tokenizer, prompts: Sequence[str], context: int | None = None,
                   reserve: int = 0) -> tuple[Tensor, Tensor]:
    """(input_ids [B, P], attention_mask [B, P]) for ``prompts``, left-padded to a common length.

    Raises ``ValueError`` for unknown characters and for prompts of more than ``context`` minus
    ``reserve`` tokens (``context`` defaults to the tokenizer's ``model_max_length``; ``reserve``
    keeps room for the tokens that generation will add).
    """
    if len(prompts) == 0:
        raise ValueError("prompts is empty")
    check_text(tokenizer, prompts)
    context = tokenizer.model_max_length if context is None else context
    lengths = [len(ids) for ids in tokenizer(list(prompts))["input_ids"]]
    if max(lengths) > context - reserve:
        worst = max(range(len(prompts)), key=lambda i: lengths[i])
        room = f"{context} - {reserve} new tokens = {context - reserve}" if reserve else context
        raise ValueError(f"prompt {prompts[worst]!r} has {lengths[worst]} tokens, more than "
                         f"the context of {room}")
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer(list(prompts), padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = side
    return enc["input_ids"], enc["attention_mask"]


def build_model(tokenizer, config: ModelConfig | None = None, seed: int | None = None):
    """A freshly initialised ``GPT2LMHeadModel`` sized by ``config`` for ``tokenizer`` (no
    dropout). ``seed`` seeds torch first so the initial weights are reproducible."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = config or ModelConfig()
    if seed is not None:
        torch.manual_seed(seed)
    hf_config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=config.n_positions, n_embd=config.n_embd,
        n_layer=config.n_layer, n_head=config.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    return GPT2LMHeadModel(hf_config)


def count_parameters(model: torch.nn.Module) -> int:
    """Number of parameters (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())


def context_length(model) -> int:
    """The model's context (``n_positions`` or ``max_position_embeddings``)."""
    cfg = model.config
    n = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
    if n is None:
        raise ValueError(f"cannot tell the context length of a {type(model).__name__}")
    return int(n)


def check_compatible(model, tokenizer) -> None:
    """Raise ``ValueError`` unless ``tokenizer`` can drive ``model``.

    Every token id must have an embedding row (len(tokenizer) <= vocab_size), and the special
    ids the model's config declares (eos, pad) must be the tokenizer's.
    """
    vocab = int(model.config.vocab_size)
    if len(tokenizer) > vocab:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens but the model's embedding has "
                         f"only {vocab} rows: they were not made for each other")
    for name in ("eos_token_id", "pad_token_id"):
        want, have = getattr(model.config, name, None), getattr(tokenizer, name)
        if want is not None and have is not None and int(want) != int(have):
            raise ValueError(f"{name} differs: model config says {want}, tokenizer says {have}")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token; responses could never end")


def _try_folder(folder: Path, tried: list[str]):
    """(model, tokenizer) from ``folder``, or None after noting why in ``tried``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not folder.is_dir():
        tried.append(f"folder {folder} (does not exist)")
        return None
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        tried.append(f"folder {folder} ({type(err).__name__}: {str(err).splitlines()[0]})")
        return None
    return model, tokenizer


def _try_hub(name: str, tried: list[str]):
    """(model, tokenizer) for a hub name (local HF cache only when offline), or None."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(name, local_files_only=offline)
            tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=offline)
    except (OSError, ValueError, KeyError) as err:
        where = "the local Hugging Face cache (HF_HUB_OFFLINE=1)" if offline else "the hub"
        tried.append(f"hub name {name!r} in {where} ({type(err).__name__})")
        return None
    return model, tokenizer


def load_pretrained(name_or_folder: str | os.PathLike,
                    search_dirs: Sequence[str | os.PathLike] = ()):
    """(model, tokenizer) of a causal LM by local folder or hub name, checked to match.

    Tried in order: ``name_or_folder`` as a folder, ``<dir>/<name>`` for each of
    ``search_dirs``, then ``name_or_folder`` as a hub name (only the local Hugging Face cache
    when ``HF_HUB_OFFLINE=1``). A tokenizer without a pad token gets its eos token as pad.
    Raises :class:`CheckpointNotFoundError` listing everything tried.
    """
    tried: list[str] = []
    folders = [Path(name_or_folder).expanduser()]
    folders += [Path(d).expanduser() / str(name_or_folder) for d in search_dirs]
    for folder in folders:
        found = _try_folder(folder, tried)
        if found is not None:
            break
    else:
        found = _try_hub(str(name_or_folder), tried)
    if found is None:
        raise CheckpointNotFoundError(f"no checkpoint {str(name_or_folder)!r}; tried: "
                                      + "; ".join(tried))
    model, tokenizer = found
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    check_compatible(model, tokenizer)
    return model, tokenizer


@dataclass
class Generation:
    """Prompts and sampled responses. ``sequences``/``attention_mask`` [B, T]; the response
    starts at column ``response_start``; mask 1 on prompt tokens and on response tokens up to
    and including the first eos. ``responses`` are the texts without the end marker; ``ended``
    says whether each response emitted eos."""

    sequences: Tensor
    attention_mask: Tensor
    response_start: int
    responses: list[str]
    ended: list[bool]


def response_attention(sequences: Tensor, prompt_mask: Tensor, eos_id: int) -> Tensor:
    """Attention mask [B, T] of prompt (from ``prompt_mask`` [B, P]) plus response tokens up to
    and including the first ``eos_id``; everything after it is 0."""
    start = prompt_mask.shape[1]
    resp = sequences[:, start:]
    is_eos = (resp == eos_id).to(torch.int64)
    before_or_at = (is_eos.cumsum(1) - is_eos) == 0  # no eos strictly before this column
    return torch.cat([prompt_mask, before_or_at.to(prompt_mask.dtype)], dim=1)


def decode_responses(tokenizer, sequences: Tensor,
                     response_start: int) -> tuple[list[str], list[bool]]:
    """(texts, ended): each row's tokens from ``response_start`` up to its first eos, decoded
    without special tokens, and whether an eos was found."""
    texts, ended = [], []
    eos = tokenizer.eos_token_id
    for row in sequences[:, response_start:].tolist():
        stop = row.index(eos) if eos in row else len(row)
        texts.append(tokenizer.decode(row[:stop], skip_special_tokens=True))
        ended.append(stop < len(row))
    return texts, ended


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 5, *,
             do_sample: bool = False, temperature: float = 1.0,
             top_k: int | None = None) -> Generation:
    """Greedy (default) or sampled responses to ``prompts`` with Hugging Face ``generate``.

    Sampling uses torch's global RNG (seed it with ``torch.manual_seed``). ``top_k=None`` samples
    from the full distribution. Raises ``ValueError`` if a prompt plus ``max_new_tokens`` does
    not fit in the model's context.
    """
    max_new_tokens = check_positive_int(max_new_tokens, "max_new_tokens")
    context = context_length(model)
    ids, mask = encode_prompts(tokenizer, prompts, context, reserve=max_new_tokens)
    ids, mask = ids.to(model.device), mask.to(model.device)
    options = {"do_sample": bool(do_sample)}
    if do_sample:
        options["temperature"] = check_in_range(temperature, "temperature", 0.0, 100.0,
                                                low_open=True)
        options["top_k"] = 0 if top_k is None else check_positive_int(top_k, "top_k")
    was_training = model.training
    model.eval()
    out = model.generate(ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                         pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, **options)
    model.train(was_training)
    responses, ended = decode_responses(tokenizer, out, ids.shape[1])
    return Generation(sequences=out, attention_mask=response_attention(
        out, mask, tokenizer.eos_token_id), response_start=ids.shape[1], responses=responses,
        ended=ended)
