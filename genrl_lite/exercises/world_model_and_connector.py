"""Checkers of notebooks 02 (categorical latents, the balanced KL) and 03 (the aligner and the connector).

Each ``check_<name>(learner_fn)`` runs the learner's function on small fixed inputs, prints a verdict
with a hint and returns True or False (see ``genrl_lite/exercises/__init__.py``).
"""
from __future__ import annotations

import functools
import zlib

import numpy as np
import torch
import torch.nn.functional as F

from genrl_lite.exercises.core import _Wrong, _compare, _exercise, _tensor, _unit, _toy_model


# --- notebook 02: categorical latents and the balanced KL -----------------------------------------------

def _logits(shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@_exercise("2.1", "kl_categorical", "the KL of G categoricals")
def check_kl_categorical(fn):
    from genrl_lite.world_model import kl_categorical, mixed_probs

    lhs, rhs = _logits((2, 3, 4, 5), 0, 2.0), _logits((2, 3, 4, 5), 1, 2.0)
    for unimix in (0.01, 0.0):
        got = fn(lhs.clone(), rhs.clone(), unimix)
        p, q = mixed_probs(lhs, unimix), mixed_probs(rhs, unimix)
        _compare(got, kl_categorical(lhs, rhs, unimix), f"kl_categorical(lhs, rhs, unimix={unimix})", mistakes=[
            (lambda: (p * (p.log() - q.log())).sum(-1).mean(-1),
             "you averaged over the G groups: the KL of independent variables is their sum."),
            (lambda: kl_categorical(rhs, lhs, unimix), "that is KL(rhs || lhs): the expectation is under lhs."),
            (lambda: kl_categorical(lhs, rhs, 0.0), "mix the uniform distribution into both sides first "
                                                    "(the unimix argument)."),
            (lambda: (p * (p.log() - q.log())).sum(-1), "sum over the C classes and over the G groups.")])
    return "Summed over groups, one KL per (batch, time) element."


@_exercise("2.2", "straight_through", "straight-through one-hot samples")
def check_straight_through(fn):
    from genrl_lite.world_model import mixed_probs

    logits = _logits((3, 4, 5), 2, 1.5).requires_grad_(True)
    index = torch.randint(5, (3, 4), generator=torch.Generator().manual_seed(3))
    weights = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(4))
    z = fn(logits, index, 0.01)
    _compare(z, F.one_hot(index, 5).float(), "the value of z", 1e-5, mistakes=[
        (mixed_probs(logits, 0.01), "the forward value must be the one-hot of the sampled index, not the probabilities.")])
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        raise _Wrong("the value is right, but no gradient reaches the logits: z must stay connected to "
                     "the probabilities (something whose value is 0 but whose gradient is theirs).")
    (grad,) = torch.autograd.grad((z * weights).sum(), logits, allow_unused=True)
    if grad is None or not grad.abs().sum():
        raise _Wrong("the value is right, but the gradient to the logits is zero.")
    logits2 = logits.detach().clone().requires_grad_(True)
    (want,) = torch.autograd.grad((mixed_probs(logits2, 0.01) * weights).sum(), logits2)
    logits3 = logits.detach().clone().requires_grad_(True)
    (plain,) = torch.autograd.grad((logits3.softmax(-1) * weights).sum(), logits3)
    _compare(grad, want, "the gradient of z", 1e-6, mistakes=[
        (plain, "that is the gradient of the plain softmax: mix in the 1% uniform first.")])
    return "One-hot forward, the mixed probabilities' gradient backward."


def _kl_pair(seed: int = 5):
    """(B=4, T=6, G=3, C=5) posterior and prior logits: two sequences far apart, two close (below 1 nat)."""
    post = _logits((4, 6, 3, 5), seed, 1.5)
    noise = _logits((4, 6, 3, 5), seed + 1) * torch.tensor([2.0, 2.0, 0.02, 0.02]).reshape(4, 1, 1, 1)
    return post, post + noise


@_exercise("2.3", "kl_balance", "KL balancing with free nats")
def check_kl_balance(fn):
    from genrl_lite.world_model import kl_balance_loss, kl_categorical

    post, prior = _kl_pair()
    for balance, free, unimix in ((0.85, 1.0, 0.01), (0.6, 0.5, 0.01), (0.85, 0.0, 0.0)):
        args = f"balance={balance}, free={free}, unimix={unimix}"
        got = fn(post.clone(), prior.clone(), balance, free, unimix)
        want, kl = kl_balance_loss(post, prior, balance, free, unimix)
        _compare(got, want, f"the loss ({args})", mistakes=[
            (max(free, float(kl.mean())), "clip each (batch, time) KL at the free nats *before* averaging, "
                                         "not the average."),
            (kl.mean(), "the free nats are missing: KLs below `free` must be raised to `free`."),
            (kl.clamp(min=free).sum(), "average over batch and time, do not sum.")])
    # The gradient split: plain KL gradients vs the learner's, with free nats off.
    q, p = post.clone().requires_grad_(True), prior.clone().requires_grad_(True)
    gq, gp = torch.autograd.grad(fn(q, p, 0.85, 0.0, 0.01), (q, p), allow_unused=True)
    q2, p2 = post.clone().requires_grad_(True), prior.clone().requires_grad_(True)
    pq, pp = torch.autograd.grad(kl_categorical(q2, p2, 0.01).mean(), (q2, p2))
    share = lambda g, ref: 0.0 if g is None else float((g * ref).sum() / (ref * ref).sum())
    to_prior, to_post = share(gp, pp), share(gq, pq)
    if abs(to_prior - 0.85) > 1e-3 or abs(to_post - 0.15) > 1e-3:
        raise _Wrong(f"the value is right, but your loss sends {to_prior:.2f} of the KL's gradient to the prior "
                     f"and {to_post:.2f} to the posterior (with balance 0.85 it should be 0.85 and 0.15): "
                     f"which term stops the gradient on which side?")
    return "Value and gradient split (0.85 to the prior, 0.15 to the posterior) both match."


# --- notebook 03: the aligner and the connector ---------------------------------------------------------

@_exercise("3.1", "lafite", "the aligner's noise model")
def check_lafite(fn):
    from genrl_lite.aligner import add_lafite_noise

    e = _unit((64, 16), 7)
    for alpha in (0.5, 0.2):
        got = fn(e.clone(), alpha, torch.Generator().manual_seed(8))
        want = add_lafite_noise(e, alpha, torch.Generator().manual_seed(8))
        n = torch.randn(e.shape, generator=torch.Generator().manual_seed(8))
        g = _tensor(got, "your noisy embeddings")
        if g.shape == want.shape and not torch.allclose(g.norm(dim=-1), torch.ones(len(g), dtype=g.dtype), atol=1e-4):
            raise _Wrong("the noisy embeddings must be unit vectors (normalize the result).")
        _compare(got, want, f"lafite(e, alpha={alpha})", mistakes=[
            (F.normalize((1 - alpha) * e + alpha * n, dim=-1), "is n-hat a *unit* vector? Normalize the Gaussian "
                                                              "noise before mixing it in."),
            (F.normalize(alpha * e + (1 - alpha) * F.normalize(n, dim=-1), dim=-1),
             "the weights are swapped: alpha is the weight of the noise.")],
            otherwise="Draw the noise with torch.randn(e.shape, generator=generator), one row per embedding, "
                      "so that it is the same draw as the package's.")
    cos = float((add_lafite_noise(_unit((4096, 384), 9), 0.5) * _unit((4096, 384), 9)).sum(1).mean())
    return f"At alpha = 0.5 in 384 dimensions the noisy vector keeps cos {cos:.2f} to the clean one."


@functools.lru_cache(maxsize=1)
class _ToyVLM:
    """Stands in for the VLM: a fixed unit vector per prompt (E = 16)."""

    dim = 16

    def embed_text(self, prompts):
        return torch.stack([_unit(16, zlib.crc32(p.encode())) for p in prompts])


@_exercise("3.2", "aligner_loss", "the aligner's training loss")
def check_aligner_loss(fn):
    from genrl_lite.aligner import Aligner, add_lafite_noise

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        aligner = Aligner(16)
    e = torch.cat([_unit((3, 16), 10), torch.zeros(2, 16), _unit((5, 16), 11)])   # rows 3-4: padding
    e = e * 1.5                                                                  # not unit: normalize
    got = fn(aligner, e.clone(), torch.Generator().manual_seed(12))
    if isinstance(got, torch.Tensor) and not got.requires_grad:
        raise _Wrong("the loss must stay differentiable with respect to the aligner's weights "
                     "(no torch.no_grad, .item() or .detach()).")
    want = aligner.loss(e, torch.Generator().manual_seed(12))[0]
    clean = F.normalize(e[e.norm(dim=-1) > 0], dim=-1)
    noisy = add_lafite_noise(clean, 0.5, torch.Generator().manual_seed(12))

    def no_drop():
        all_rows = F.normalize(e, dim=-1)
        out = aligner(add_lafite_noise(all_rows, 0.5, torch.Generator().manual_seed(12)))
        return 1 - F.cosine_similarity(out, all_rows, dim=-1).mean()

    _compare(got, want, "the loss", 1e-5, mistakes=[
        (no_drop, "zero rows (padding at episode starts) must be left out before adding noise."),
        (lambda: 1 - F.cosine_similarity(aligner(noisy), noisy, dim=-1).mean(),
         "compare the aligner's output with the *clean* embedding, not with its noisy input."),
        (lambda: 1 - F.cosine_similarity(aligner(clean), clean, dim=-1).mean(),
         "the aligner's input must be the noisy embedding."),
        (lambda: 1 - F.cosine_similarity(aligner(noisy), clean, dim=-1).sum(),
         "average the cosine distance over rows, do not sum.")],
        otherwise="Use add_lafite_noise(e, aligner.alpha, generator) on the clean, unit-norm rows.")
    return "Same loss as Aligner.loss: trained on visual embeddings only."


@_exercise("3.3", "decode_prompt", "from a prompt to an imagined video")
def check_decode_prompt(fn):
    from types import SimpleNamespace

    from genrl_lite.connector import imagine_prompt

    wm, conn, al = _toy_model()
    bundle, vlm = SimpleNamespace(world_model=wm, connector=conn, aligner=al), _ToyVLM()
    for prompt, length in (("walk fast clean", 6), ("a person sitting on the floor", 3)):
        got = fn(bundle, vlm, prompt, length)
        if isinstance(got, torch.Tensor):
            got = got.detach().cpu().numpy()
        if not isinstance(got, np.ndarray):
            raise _Wrong(f"return the video as a numpy array, got {type(got).__name__}.")
        with torch.no_grad():
            e = vlm.embed_text([prompt])
            ref = lambda aligner: (wm.decode(imagine_prompt(conn, e, length, aligner)["stoch"].flatten(-2))[0]
                                   * 255).round().to(torch.uint8).numpy()
            want, no_aligner = ref(al), ref(None)
        if got.shape == (1, *want.shape):
            raise _Wrong(f"the video has shape {got.shape}: drop the batch axis, (T, 64, 64, 3) for one prompt.")
        if got.shape != want.shape:
            raise _Wrong(f"the video has shape {got.shape}, expected {want.shape} (T = length frames, the "
                         f"connector's rollout without its initial state).")
        if got.dtype != np.uint8:
            raise _Wrong(f"return uint8 frames in 0..255 (like a recorded video), got {got.dtype}.")
        again = fn(bundle, vlm, prompt, length)
        again = again.detach().cpu().numpy() if isinstance(again, torch.Tensor) else again
        if not np.array_equal(got, again):
            raise _Wrong("two calls give different videos: the target uses the mode latents (sample=False).")
        diff = np.abs(got.astype(int) - want.astype(int)).max()
        if diff > 1:
            if np.abs(got.astype(int) - no_aligner.astype(int)).max() <= 1:
                raise _Wrong("this is the no-aligner ablation: pass the text embedding through the aligner first.")
            raise _Wrong(f"the frames differ from the package's path by up to {diff} grey levels: text embedding "
                         f"-> aligner -> connector rollout -> decoder of the flattened z.")
    return "Same video as imagine_prompt + the decoder (checked on a toy model; now try the real one)."


__all__ = [name for name in dir() if name.startswith("check_")]
