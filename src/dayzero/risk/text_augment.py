"""Training with few labels: text augmentation, mixup and adversarial perturbations.

What :class:`~dayzero.risk.text_classifier.TextClassifier` uses when ``augment`` or
``adversarial`` is set:

* :func:`drop_tokens`: token dropout (each word, or each character of a Chinese, Japanese or
  Korean text without spaces, is removed with probability ``p``; at least one is kept). A
  fine-tuned model sees a fresh draw in every batch; a frozen encoder's head gets
  ``augment_copies`` dropped copies of every labelled text beside the originals.
* :func:`mixup_loss`: mixup of sentence vectors (Zhang et al. 2018, applied to sentence
  embeddings as in Guo et al. 2019): two texts' vectors and their labels are mixed with a
  weight drawn from Beta(alpha, alpha). Needs a head trained by gradient, so only with a
  fine-tuned encoder.
* :func:`fgm_loss`: the fast gradient method on word embeddings (Miyato et al. 2017): the clean
  loss plus the loss after each text's word embeddings are moved by ``epsilon`` along the
  normalised gradient of the clean loss.

Synonym swaps are not offered: they need a thesaurus (WordNet) that no package here ships with
its data, and a thesaurus is language-specific where token dropout is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

AUGMENTS = ("none", "token-dropout", "mixup")
ADVERSARIAL = ("none", "fgm")
_WORD = re.compile(r"\S+")
# Scripts written without spaces between words (CJK, kana, hangul): there a character is a token.
_UNSPACED = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def check_augment(augment: str, adversarial: str, p: float, copies: int, epsilon: float) -> None:
    """Raise ``ValueError`` naming the parameter when an augmentation setting is invalid."""
    if augment not in AUGMENTS:
        raise ValueError(f"augment must be one of {AUGMENTS}, got {augment!r}")
    if adversarial not in ADVERSARIAL:
        raise ValueError(f"adversarial must be one of {ADVERSARIAL}, got {adversarial!r}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"augment_p must be in (0, 1), got {p!r}")
    if copies < 1:
        raise ValueError(f"augment_copies must be >= 1, got {copies!r}")
    if not epsilon > 0.0:
        raise ValueError(f"adversarial_epsilon must be > 0, got {epsilon!r}")


def drop_tokens(texts: Sequence[str], p: float, rng: np.random.Generator) -> list[str]:
    """Each text with every word (in CJK text without spaces, every character) dropped with
    probability ``p``.

    At least one token of every text is kept, so no text becomes empty.
    """
    out = []
    for text in texts:
        words = _WORD.findall(text)
        spaced = len(words) > 1
        tokens = words if spaced else list(text.strip()) if _UNSPACED.search(text) else words
        if len(tokens) <= 1:
            out.append(text)
            continue
        keep = rng.random(len(tokens)) >= p
        if not keep.any():
            keep[rng.integers(len(tokens))] = True
        kept = [t for t, k in zip(tokens, keep, strict=True) if k]
        out.append(" ".join(kept) if spaced else "".join(kept))
    return out


def mixup_loss(
    vectors: torch.Tensor,
    targets: torch.Tensor,
    head: nn.Module,
    lam: float,
    perm: torch.Tensor,
) -> torch.Tensor:
    """Cross-entropy of ``head`` on mixed vectors: ``lam * v + (1 - lam) * v[perm]`` against the
    same mix of the two rows' labels."""
    mixed = lam * vectors + (1.0 - lam) * vectors[perm]
    logits = head(mixed)
    ce = nn.functional.cross_entropy
    return lam * ce(logits, targets) + (1.0 - lam) * ce(logits, targets[perm])


def fgm_loss(
    embedding: nn.Module,
    batch_loss: Callable[[], torch.Tensor],
    epsilon: float,
) -> torch.Tensor:
    """Clean loss + adversarial loss under the fast gradient method on ``embedding``'s output.

    Parameters
    ----------
    embedding : torch.nn.Module
        The model's input (word) embedding layer; its output is perturbed through forward hooks,
        so the weights themselves are never written (nothing to restore, frozen embeddings work).
    batch_loss : callable
        Runs the model on the batch and returns its loss; called twice (clean, then perturbed),
        so any randomness in it (dropped tokens, the mixup draw) must be fixed before the call.
    epsilon : float
        L2 norm of each text's perturbation (over all its tokens and dimensions).

    Returns
    -------
    torch.Tensor
        ``clean + adversarial``; its backward trains on both.
    """
    captured: dict[str, torch.Tensor] = {}

    def capture(_module, _inputs, output):
        if not output.requires_grad:  # frozen embeddings (LoRA, top-k): still differentiate
            output = output.detach().requires_grad_(True)
        captured["embedded"] = output
        return output

    handle = embedding.register_forward_hook(capture)
    try:
        clean = batch_loss()
    finally:
        handle.remove()
    embedded = captured["embedded"]
    (grad,) = torch.autograd.grad(clean, embedded, retain_graph=True)
    norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (grad.dim() - 1)))
    delta = (epsilon * grad / norm).detach()

    def perturb(_module, _inputs, output):
        return output + delta

    handle = embedding.register_forward_hook(perturb)
    try:
        adversarial = batch_loss()
    finally:
        handle.remove()
    return clean + adversarial
