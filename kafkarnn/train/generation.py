"""Text from a model: continue a prompt, or go on from a training stream; refuse unknown characters."""

from __future__ import annotations

from kafkarnn.engine.model import CharModel
from kafkarnn.engine.sampling import sample
from kafkarnn.engine.vocab import Vocab
from kafkarnn.errors import KafkarnnError


def unknown_chars_message(chars: list[str], what: str = "the prompt") -> str:
    shown = ", ".join(repr(c) for c in chars[:10]) + (" …" if len(chars) > 10 else "")
    return f"{what} has characters the model never saw: {shown}"


def generate(model: CharModel, vocab: Vocab, prompt: str, length: int, rng,
             temperature: float = 1.0, top_k: int | None = None, stream=None):
    """Continue `prompt` from a zero state. Returns (text, per-character probabilities); unknown
    characters are refused.

    Without a prompt the sample goes on from `stream`, (state, next character id): a training
    stream's hidden state, as min-char-rnn samples from `hprev`. A model trained on one stream
    (the seed preset) has met the zero state once per pass through the text, and from there at
    temperature 1 it mostly writes noise; from a state it knows, it writes like the text. (A run
    with --restart-every meets the zero state mid-text too: Config.restart_every.)
    """
    unknown = vocab.unknown(prompt)
    if unknown:
        raise KafkarnnError(unknown_chars_message(unknown))
    if not prompt and stream is not None:
        state, next_id = stream
        ids, probs = sample(model, [next_id], length, rng, temperature, top_k, state=state)
    else:
        ids, probs = sample(model, vocab.encode(prompt), length, rng, temperature, top_k)
    return vocab.decode(ids), probs
