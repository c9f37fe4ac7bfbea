"""Proximal policy optimisation (Schulman et al. 2017) for a team of agents sharing one network.

The pieces the self-play trainer (:mod:`rlgan.agents.selfplay`) composes: the actor-critic
network, generalised advantage estimation and the clipped loss, each a plain function of
tensors (the shape of CleanRL's ``ppo.py``). Samples are agent-steps: every agent of a team
contributes its own observation, action and reward to the team's network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class TeamNetwork(nn.Module):
    """Actor-critic MLP over flat uint8 observations.

    Args:
        observation_size: length D of an observation.
        n_actions: discrete actions.
        hidden: width of the two hidden layers.
        scale: (D,) the factor each observation entry is multiplied by (to bring counters
            such as the step number to about [0, 1]).
    """

    def __init__(self, observation_size: int, n_actions: int, hidden: int,
                 scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.float())
        self.body = nn.Sequential(nn.Linear(observation_size, hidden), nn.Tanh(),
                                  nn.Linear(hidden, hidden), nn.Tanh())
        self.policy = nn.Linear(hidden, n_actions)
        self.value = nn.Linear(hidden, 1)
        nn.init.orthogonal_(self.policy.weight, gain=0.01)
        nn.init.zeros_(self.policy.bias)

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``observations`` (M, D) uint8 -> action logits (M, n_actions), values (M,)."""
        features = self.body(observations.float() * self.scale)  # (M, hidden)
        return self.policy(features), self.value(features).squeeze(-1)


def sample_actions(network: TeamNetwork, observations: torch.Tensor, generator: torch.Generator,
                   greedy: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Actions (M,) int64, their log-probabilities (M,) and values (M,) for ``observations``
    (M, D), sampled with ``generator`` (or the most likely with ``greedy``); no gradients."""
    with torch.no_grad():
        logits, values = network(observations)
        log_probs = torch.log_softmax(logits, dim=-1)
        if greedy:
            actions = logits.argmax(dim=-1)
        else:
            actions = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(-1)
        return actions, log_probs.gather(-1, actions[:, None]).squeeze(-1), values


def advantages(rewards: torch.Tensor, values: torch.Tensor, gamma: float,
               lam: float) -> torch.Tensor:
    """Generalised advantage estimates (T, M) of whole episodes: ``rewards`` and ``values``
    (T, M), step ``T - 1`` the last of every episode (nothing is bootstrapped after it)."""
    result = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        next_value = values[t + 1] if t + 1 < rewards.shape[0] else torch.zeros_like(values[t])
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        result[t] = running
    return result


@dataclass(frozen=True)
class LossTerms:
    """The parts of :func:`ppo_loss` (scalars), for logging."""

    policy: float
    value: float
    entropy: float
    clip_fraction: float


def ppo_loss(network: TeamNetwork, observations: torch.Tensor, actions: torch.Tensor,
             old_log_probs: torch.Tensor, advantage: torch.Tensor, returns: torch.Tensor,
             clip: float, value_coef: float, entropy_coef: float) -> tuple[torch.Tensor, LossTerms]:
    """The clipped surrogate objective plus value and entropy terms on a minibatch (M, ...);
    ``advantage`` is normalised here. Returns ``(loss, terms)``."""
    logits, values = network(observations)
    log_probs = torch.log_softmax(logits, dim=-1)
    new_log_probs = log_probs.gather(-1, actions[:, None]).squeeze(-1)
    ratio = (new_log_probs - old_log_probs).exp()
    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    policy_loss = -torch.min(ratio * advantage,
                             ratio.clamp(1 - clip, 1 + clip) * advantage).mean()
    value_loss = 0.5 * (values - returns).pow(2).mean()
    entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
    loss = policy_loss + value_coef * value_loss - entropy_coef * entropy
    terms = LossTerms(policy_loss.item(), value_loss.item(), entropy.item(),
                      ((ratio - 1).abs() > clip).float().mean().item())
    return loss, terms
