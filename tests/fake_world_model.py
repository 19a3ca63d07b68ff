"""A tiny stand-in for the world model, connector and aligner (issue 4), with the same interface.

Used by the reward, actor-critic and data-free tests so they run in milliseconds and do not depend
on a trained model. The dynamics are chosen so that behaviour is learnable and checkable:

- the first A entries of the next deterministic state h are tanh(action), the rest recurrent;
- z "tokenizes" h: group g holds a one-hot over C bins of h[g] (centres spread over [-1, 1]),
  sampled from logits -sharpness * (h[g] - centre)^2 with straight-through gradients.

So "which action did the agent take" can be read off both h and z, and a target z sequence
played with a known action pins that action down to its bin.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class FakeRSSM(nn.Module):
    def __init__(self, deter: int = 8, groups: int = 3, classes: int = 4, action_dim: int = 2, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.deter, self.groups, self.classes, self.action_dim = deter, groups, classes, action_dim
        assert groups <= deter, (groups, deter)
        self.rec = nn.Linear(deter + groups * classes, deter - action_dim)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.register_buffer("centres", torch.linspace(-1, 1, 2 * classes + 1)[1::2])
        self.sharpness = 8.0

    def initial(self, batch: int) -> dict:
        device = self.centres.device
        return {"deter": torch.zeros(batch, self.deter, device=device),
                "stoch": torch.zeros(batch, self.groups, self.classes, device=device),
                "logits": torch.zeros(batch, self.groups, self.classes, device=device)}

    def stoch_flat(self, state) -> torch.Tensor:
        s = state["stoch"]
        return s.reshape(*s.shape[:-2], self.groups * self.classes)

    def feat(self, state) -> torch.Tensor:
        return torch.cat([state["deter"], self.stoch_flat(state)], -1)

    def img_step(self, state, action, sample: bool = True) -> dict:
        rest = torch.tanh(self.rec(torch.cat([state["deter"], self.stoch_flat(state)], -1)))
        deter = torch.cat([torch.tanh(action), rest], -1)
        logits = -self.sharpness * (deter[:, :self.groups, None] - self.centres).square()
        probs = logits.softmax(-1)
        if sample:
            idx = torch.distributions.Categorical(probs=probs).sample()
        else:
            idx = probs.argmax(-1)
        onehot = F.one_hot(idx, self.classes).float()
        stoch = onehot + probs - probs.detach()  # straight-through
        return {"deter": deter, "stoch": stoch, "logits": logits}

    def imagine(self, start, policy, horizon: int, sample: bool = True) -> dict:
        states = [dict(start)]
        for _ in range(horizon):
            action = policy(self.feat(states[-1]))
            states.append(self.img_step(states[-1], action, sample))
        return {k: torch.stack([s[k] for s in states]) for k in start}


class FakeWorldModel(nn.Module):
    """``reward_projection`` (GenRL's g, the decoder's first Linear) is the identity here, so the
    max-cosine of two z's is the fraction of groups whose class agrees: easy to reason about."""

    def __init__(self, rssm: FakeRSSM):
        super().__init__()
        self.rssm = rssm
        size = rssm.groups * rssm.classes
        self.reward_projection = nn.Linear(size, size)
        with torch.no_grad():
            self.reward_projection.weight.copy_(torch.eye(size))
            self.reward_projection.bias.zero_()


class FakeAligner(nn.Module):
    def __init__(self, embed_dim: int = 5):
        super().__init__()
        self.net = nn.Linear(embed_dim, embed_dim)

    def forward(self, e):
        return F.normalize(self.net(e) + e, dim=-1)


class FakeConnector(nn.Module):
    """rollout(embed, T) plays the RSSM with a constant action read from the embedding.

    The action is ``tanh(embed @ readout)``; with ``target_action`` set, every rollout instead
    plays that fixed action: the "prompt" then means "do target_action" (used to check that a
    policy trained on GenRL's reward learns the prompted action).
    """

    def __init__(self, rssm: FakeRSSM, embed_dim: int = 5, target_action=None):
        super().__init__()
        self.rssm = rssm
        self.readout = nn.Linear(embed_dim, rssm.action_dim)
        self.target_action = target_action
        self.calls = 0

    def rollout(self, embed, length: int, sample: bool = False) -> dict:
        self.calls += 1
        assert embed.ndim == 2
        if self.target_action is not None:
            action = torch.as_tensor(self.target_action, dtype=torch.float32).expand(embed.shape[0], -1)
        else:
            action = torch.tanh(self.readout(embed))
        state = self.rssm.initial(embed.shape[0])
        states = []
        for _ in range(length):
            state = self.rssm.img_step(state, action, sample)
            states.append(state)
        return {k: torch.stack([s[k] for s in states], 1) for k in state}  # (B, T, ...)


def make_all(embed_dim: int = 5, target_action=None, seed: int = 0):
    torch.manual_seed(seed)
    rssm = FakeRSSM(seed=seed)
    wm = FakeWorldModel(rssm)
    return rssm, wm, FakeConnector(rssm, embed_dim, target_action), FakeAligner(embed_dim)
