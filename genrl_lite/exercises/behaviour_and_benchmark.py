"""Checkers of notebooks 04 (sequence-aligned rewards), 05 (returns), 06 (data-free start states) and 07 (the benchmark).

Each ``check_<name>(learner_fn)`` runs the learner's function on small fixed inputs, prints a verdict
with a hint and returns True or False (see ``genrl_lite/exercises/__init__.py``).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from genrl_lite.exercises.core import _Wrong, _compare, _exercise, _tensor, _toy_model


# --- notebook 04: sequence-aligned rewards -------------------------------------------------------------

@_exercise("4.1", "max_cos", "the max-cosine similarity")
def check_max_cos(fn):
    from genrl_lite.rewards import cosine, max_cosine

    g = torch.Generator().manual_seed(13)
    u = torch.randn(5, 8, generator=g) * torch.rand(5, 1, generator=g) * 3
    v = torch.randn(5, 8, generator=g)
    _compare(fn(u.clone(), u.clone()), torch.ones(5), "max_cos(u, u)", mistakes=[
        (u.norm(dim=-1) ** 2, "divide by the squared norm, so that a vector's similarity with itself is 1.")])
    for a, b, what in ((u, v, "max_cos(u, v)"), (u[None].expand(3, 5, 8) * 2, v, "max_cos(u (3, 5, 8), v (5, 8))")):
        _compare(fn(a.clone(), b.clone()), max_cosine(a, b), what, mistakes=[
            (cosine(a, b), "that is the plain cosine: it ignores that the two vectors differ in length."),
            (lambda: (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-8) ** 2,
             "divide by the *larger* of the two norms, squared.")])
    return "Cosine, shrunk by the ratio of the smaller to the larger norm."


def _sequences(H: int = 12, B: int = 4, Fd: int = 6):
    """Agent (H, B, F) and target (H, F) features; trajectory 3 is the target played H - 4 steps late."""
    g = torch.Generator().manual_seed(14)
    target = torch.randn(H, Fd, generator=g)
    agent = torch.randn(H, B, Fd, generator=g)
    late = H - 4
    agent[:, 3] = target[(torch.arange(H) - late).clamp_min(0)] + 0.01 * torch.randn(H, Fd, generator=g)
    agent[:, 2] = target + 0.3 * torch.randn(H, Fd, generator=g)
    return agent, target


@_exercise("4.2", "best_offsets", "the temporal-alignment offset search")
def check_best_offsets(fn):
    from genrl_lite.rewards import best_offsets, max_cosine

    agent, target = _sequences()
    H = agent.shape[0]
    for K in (4, 1, H):
        got = fn(agent.clone(), target.clone(), K)
        want = best_offsets(agent, target, K)

        def mistake(offsets: int, worst: bool = False, moving_target: bool = False):
            head = lambda t: target[t:t + K] if moving_target else target[:K]
            s = torch.stack([max_cosine(agent[t:t + K], head(t)[:, None]).mean(0) for t in range(offsets)])
            return s.argmin(0) if worst else s.argmax(0)

        _compare(got, want, f"best_offsets(agent, target, window={K})", 0, mistakes=[
            (lambda: mistake(H - K), "you never try the last offset t = H - K."),
            (lambda: mistake(H - K + 1, worst=True), "you picked the offset with the worst score."),
            (lambda: mistake(H - K + 1, moving_target=True),
             "the agent window starting at t is compared with the target's *first* K steps, not steps t..t+K.")],
            otherwise="score(t) = mean over i < K of sim(agent[t + i], target[i]), for t = 0 .. H - K.")
    return "With window = H there is a single offset 0: no alignment."


@_exercise("4.3", "align_target", "the aligned target sequence")
def check_align_target(fn):
    from genrl_lite.rewards import align_target

    T, Fd = 10, 3
    target = torch.arange(T * Fd, dtype=torch.float32).reshape(T, Fd)
    offsets = torch.tensor([0, 2, 5, 9])
    got = fn(target.clone(), offsets.clone(), T)
    j = torch.arange(T)[:, None]
    gather = lambda index: target[index]                                        # (T, B, F)
    _compare(got, align_target(target, offsets, T), "align_target(target, offsets=[0, 2, 5, 9], length=10)", 0,
             mistakes=[
                 (lambda: gather(j - offsets[None]), "did you clamp the target index at 0? Before its offset the "
                                                     "agent is compared with the target's first state."),
                 (lambda: gather((j + offsets[None]).clamp_max(T - 1)), "agent step j is compared with target step "
                                                                        "j - offset, not j + offset."),
                 (lambda: gather(j.expand(T, 4)), "the offsets are not used.")],
             otherwise="aligned[j, b] = target[max(0, j - offsets[b])], shape (length, B, F).")
    return "Before the offset: the target's first state; afterwards the target in lockstep."


# --- notebook 05: returns ----------------------------------------------------------------------------

@_exercise("5.1", "lambda_return", "the lambda-return")
def check_lambda_return(fn):
    from genrl_lite.actor_critic import lambda_returns

    g = torch.Generator().manual_seed(15)
    r, v = torch.rand(6, 3, 1, generator=g), torch.randn(7, 3, 1, generator=g)
    gamma = 0.99

    def recursion(lam, last, value_at):
        out, R = [], last
        for t in reversed(range(6)):
            R = r[t] + gamma * ((1 - lam) * v[value_at(t)] + lam * R)
            out.append(R)
        return torch.stack(out[::-1])

    for lam in (0.0, 1.0, 0.95):
        got = fn(r.clone(), v.clone(), gamma, lam)
        _compare(got, lambda_returns(r, v, gamma, lam), f"lambda_return(r, v, gamma=0.99, lam={lam})", 1e-5, mistakes=[
            (lambda: recursion(lam, torch.zeros_like(v[-1]), lambda t: t + 1),
             "the recursion must start from the value of the last state (R_T = v_T): bootstrap."),
            (lambda: recursion(lam, v[-1], lambda t: t), "step t bootstraps from the value of the *next* state, v_{t+1}."),
            (lambda: r + gamma * v[:-1], "the one-step target uses v_{t+1}, the value after the step.")],
            otherwise={0.0: "with lam = 0 it is the one-step TD target r_t + gamma v_{t+1}.",
                       1.0: "with lam = 1 it is the discounted sum of rewards plus the discounted last value.",
                       0.95: "lam = 0 and lam = 1 are right; check how the recursion mixes v_{t+1} and R_{t+1}."}[lam])
    return "lam = 0 (one-step TD), lam = 1 (Monte-Carlo + bootstrap) and lam = 0.95 all match."


@_exercise("5.2", "normalize_returns", "percentile return normalization")
def check_normalize_returns(fn):
    from genrl_lite.actor_critic import ReturnNormalizer

    g = torch.Generator().manual_seed(16)
    scenarios = {"returns with a growing spread": [10 + (1 + i / 10) * torch.randn(5, 8, 1, generator=g) for i in range(60)],
                 "returns with a tiny spread": [3 + 0.05 * torch.randn(5, 8, 1, generator=g) for _ in range(60)]}
    for name, batches in scenarios.items():
        norm = ReturnNormalizer(alpha=0.01)
        for b in batches:
            norm.update(b)
        want = norm(batches[-1])
        ema = torch.zeros(2)
        for b in batches:
            ema = 0.99 * ema + 0.01 * torch.quantile(b.flatten(), torch.tensor([0.05, 0.95]))
        got = fn([b.clone() for b in batches], 0.01)
        _compare(got, want, f"normalized last batch ({name})", 1e-4, mistakes=[
            (lambda: (batches[-1] - ema[0]) / (ema[1] - ema[0]),
             "small spreads were amplified: divide by max(1, P95 - P5), never by less than 1."),
            (lambda: (batches[-1] - batches[-1].min()) / max(1.0, float(batches[-1].max() - batches[-1].min())),
             "use the exponential moving averages of the 5th and 95th percentiles, not the last batch's min and max.")],
            otherwise="the EMA starts at 0 and moves by alpha towards each batch's 5th and 95th percentiles "
                      "(torch.quantile); normalized = (R - P5) / max(1, P95 - P5), using the EMA after the last batch.")
    return "Large spreads are scaled down; small ones are left as they are."


# --- notebook 06: data-free start states -----------------------------------------------------------------

@_exercise("6.1", "uniform_z", "uniform categorical latents")
def check_uniform_z(fn):
    from genrl_lite.data_free import uniform_stoch

    got = fn(200, 4, 5, torch.Generator().manual_seed(17))
    g = _tensor(got, "z")
    if g.shape != (200, 4, 5):
        raise _Wrong(f"z has shape {tuple(g.shape)}, expected (n, G, C) = (200, 4, 5).")
    if not ((g == 0) | (g == 1)).all() or not (g.sum(-1) == 1).all():
        raise _Wrong("each group must be a one-hot vector over its C classes.")
    if (g.argmax(-1) == g.argmax(-1)[:, :1]).all():
        raise _Wrong("every group of a state has the same class: draw one class per group.")
    _compare(got, uniform_stoch(200, 4, 5, generator=torch.Generator().manual_seed(17)), "z", 0,
             otherwise="the statistics may be right, but it is not the same draw: draw the class indices with "
                       "torch.randint(classes, (n, groups), generator=generator).")
    return "One uniformly drawn class per group: every z decodes to some frame."


def _toy_policy(wm):
    w = torch.randn(wm.cfg.feat_dim, wm.action_dim, generator=torch.Generator().manual_seed(18)) * 0.3
    return lambda feat: torch.tanh(feat @ w)


@_exercise("6.2", "start_mixture", "the data-free start-state mixture")
def check_start_mixture(fn):
    from genrl_lite.data_free import DataFreeConfig, data_free_starts

    wm, conn, al = _toy_model()
    for n, p, L in ((24, 0.5, 5), (8, 1.0, 4)):
        torch.manual_seed(19)
        ref = data_free_starts(wm.rssm, conn, al, _toy_policy(wm), wm.action_dim,
                               DataFreeConfig(n=n, p_connector=p, warmup_steps=0, rollout_length=L),
                               embed_dim=16, generator=torch.Generator().manual_seed(20))
        torch.manual_seed(19)
        got = fn(wm.rssm, conn, al, n, p, L, 16, torch.Generator().manual_seed(20))
        if not isinstance(got, tuple) or len(got) != 2 or not isinstance(got[0], dict):
            raise _Wrong("return (state, coin): a dict with deter, stoch and logits, and the (n,) bool coin flips.")
        state, coin = got
        missing = {"deter", "stoch", "logits"} - set(state)
        if missing:
            raise _Wrong(f"the state dict is missing {', '.join(sorted(missing))}.")
        want_coin = ref.from_connector[:n]
        what = f"(n={n}, p_connector={p}, rollout_length={L})"
        _compare(torch.as_tensor(coin).float(), want_coin.float(), f"the coin flips {what}", 0, mistakes=[
            ((~want_coin).float(), "True must mean 'z from the connector', drawn with probability p_connector.")],
            otherwise="draw, in this order: the uniform z, then the n coin flips torch.rand(n, generator=...) "
                      "< p_connector, then the embeddings.")
        if _tensor(state["deter"], "deter").abs().max() > 0:
            raise _Wrong("h (deter) must stay 0 before the warm-up: only z comes from the connector.")
        _compare(state["stoch"], ref.initial["stoch"], f"z {what}", 1e-6,
                 otherwise="rows with coin False keep the uniform z; rows with coin True take, in order, the states "
                           "of the connector rollouts (one random unit embedding -> aligner -> unit norm -> "
                           "connector.rollout(e, L, sample=True) per L states, ceil(n / L) embeddings).")
        _compare(state["logits"], ref.initial["logits"], f"the logits {what}", 1e-5, mistakes=[
            (torch.zeros_like(ref.initial["logits"]), "mix the logits with the same coin flips as z.")],
            otherwise="logits: 0 (uniform) where coin is False, the connector's where it is True.")
    return "Half uniform noise, half random 'prompts' through aligner and connector, h = 0."


@_exercise("6.3", "warm_up", "the warm-up of data-free start states")
def check_warm_up(fn):
    from genrl_lite.data_free import DataFreeConfig, data_free_starts

    wm, conn, al = _toy_model()
    rssm, policy, A, k = wm.rssm, _toy_policy(wm), wm.action_dim, 3
    torch.manual_seed(21)
    state = data_free_starts(rssm, conn, al, policy, A, DataFreeConfig(n=10, warmup_steps=0, rollout_length=4),
                             embed_dim=16, generator=torch.Generator().manual_seed(22)).initial

    def reference(low, order):
        torch.manual_seed(23)
        gen = torch.Generator().manual_seed(24)
        rand = lambda f: torch.rand(len(f), A, generator=gen) * (1 - low) + low
        acts = {"random": rand, "policy": policy}
        halves = [{key: v[-1] for key, v in rssm.imagine(state, acts[name], k).items()} for name in order]
        return {key: torch.cat([h[key] for h in halves]) for key in state}

    with torch.no_grad():
        want = reference(-1.0, ("random", "policy"))
        swapped = reference(-1.0, ("policy", "random"))
        unit_actions = reference(0.0, ("random", "policy"))
        torch.manual_seed(23)
        got = fn(rssm, {key: v.clone() for key, v in state.items()}, policy, A, k, torch.Generator().manual_seed(24))
    if not isinstance(got, dict) or "deter" not in got or "stoch" not in got:
        raise _Wrong("return a state dict (deter, stoch, logits) of the 2N start states.")
    for key in ("deter", "stoch"):
        g = _tensor(got[key], key)
        if g.shape[0] == 10:
            raise _Wrong(f"{key} has {g.shape[0]} rows: return both halves, random-action warm-up first, then "
                         f"policy warm-up (2N = 20 rows).")
        if g.dim() == want[key].dim() + 1:
            raise _Wrong(f"{key} has shape {tuple(g.shape)}: keep only the final state of each warm-up.")
        _compare(got[key], want[key], f"{key} of the start states", 1e-5, mistakes=[
            (swapped[key], "the random-action half comes first, then the policy half."),
            (unit_actions[key], "random actions must be uniform in [-1, 1], not [0, 1].")],
            otherwise="imagine k steps from the mixed states with uniform random actions in [-1, 1] drawn from "
                      "the generator (torch.rand(N, A, generator=...) * 2 - 1), then k steps with the policy; "
                      "keep the final state of each and concatenate.")
    return "2N start states with a warm h: half off-policy, half on-policy."



# --- notebook 07: the benchmark ---------------------------------------------------------------------

@_exercise("7.1", "mean_stderr", "mean and standard error over seeds")
def check_mean_stderr(fn):
    from genrl_lite.benchmark_results import mean_stderr

    cases = ([0.21, 0.27, 0.24], [0.05, 0.30, 0.12, 0.18, 0.25], [None, 0.4, 0.6], [0.5], [None], [])
    for values in cases:
        got, want = fn(list(values)), mean_stderr(values)
        if not isinstance(got, tuple) or len(got) != 2:
            raise _Wrong(f"return a pair (mean, stderr), got {got!r} for {list(values)}.")
        v = np.array([x for x in values if x is not None], dtype=float)
        for part, g, w in (("mean", got[0], want[0]), ("stderr", got[1], want[1])):
            if w is None:
                if g is not None:
                    raise _Wrong(f"{part} of {list(values)} must be None: " + (
                        "no seed has a result." if len(v) == 0 else "one seed has no spread to measure."))
                continue
            if g is None:
                raise _Wrong(f"{part} of {list(values)} is None, expected a number.")
            _compare(g, w, f"the {part} of {list(values)}", 1e-6, mistakes=[
                (lambda: v.std() / math.sqrt(len(v)), "use the *sample* standard deviation (divide by n - 1)."),
                (lambda: v.std(ddof=1) / len(v), "divide the standard deviation by sqrt(n), not by n."),
                (lambda: v.std(ddof=1), "that is the standard deviation of the seeds, not the standard error "
                                        "of their mean.")])
    return "Seeds without a result are left out; one seed gives no standard error."


@_exercise("7.2", "break_even", "the amortization break-even")
def check_break_even(fn):
    from genrl_lite.benchmark import amortization

    h = 3600.0
    cases = ((120 * h, 5 * h, 7 * h), (120 * h, 3 * h, 7 * h), (10.0, 1.0, 3.0), (50.0, 4.0, 4.0), (50.0, 5.0, 4.0))
    for wm, genrl, model_free in cases:
        got = fn(wm, genrl, model_free)
        want = amortization(wm, genrl, model_free, [1])["break_even"]
        what = f"break_even(world model {wm:g} s, GenRL {genrl:g} s, model-free {model_free:g} s per policy)"
        if want is None:
            if got is not None:
                raise _Wrong(f"{what} should be None: GenRL's policies cost as much or more, so it is never cheaper.")
            continue
        if got is None or not float(got).is_integer():
            raise _Wrong(f"{what} should be a whole number of policies, got {got!r}.")
        if int(got) == want - 1:
            raise _Wrong(f"{what}: at n = {int(got)} both cost the same or GenRL still costs more: 'cheaper' means "
                         f"strictly less.")
        _compare(float(got), float(want), what, 0, otherwise="GenRL costs world model + n x its policy, model-free "
                                                              "n x its policy: the smallest n where GenRL's total is lower.")
    return "With the paper's numbers: 61 policies with data, 31 data-free."


@_exercise("7.3", "vlm_reward_labels", "the model-free baseline's reward labels")
def check_vlm_reward_labels(fn):
    from genrl_lite.model_free import vlm_rewards

    g = torch.Generator().manual_seed(25)
    embeds = F.normalize(torch.randn(20, 16, generator=g), dim=-1)
    embeds[:7] = 0                                                     # no full 8-frame clip yet
    prompt = torch.randn(16, generator=g) * 3
    got = fn(embeds.clone(), prompt.clone())
    want = vlm_rewards([{"obs": np.zeros((20, 1, 1, 3), np.uint8)}], prompt, embeds=[embeds.numpy()])[0]
    _compare(got, want, "the rewards of the 20 steps", 1e-5, mistakes=[
        (lambda: F.cosine_similarity(embeds, prompt[None], dim=-1), "the first 7 steps have no full clip (zero "
                                                                   "rows): give them the first full clip's reward."),
        (lambda: embeds @ prompt, "normalize the prompt embedding: the reward is a cosine.")],
        otherwise="reward_t = cos(e_t, e_prompt), with the zero rows replaced by the first full clip.")
    return "One reward per dataset step, computed once before offline RL starts."


__all__ = [name for name in dir() if name.startswith("check_")]
