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


class GridEncoder(nn.Module):
    """Convolutional features of a hide-and-seek observation: its ``planes`` binary planes over
    a ``side x side`` grid go through two 3x3 convolutions, and their features, with the
    observation's trailing ``extras`` numbers, through a linear layer to ``hidden`` (tanh).
    Input (..., planes * side * side + extras) float, already scaled.

    The first convolution (16 channels) is unpadded: its outputs are the cells of the inner
    ``(side - 2) x (side - 2)`` square, each seeing its 3x3 neighbourhood, so every cell is
    seen and none is computed for the outer ring (the grid's outer walls in full
    observations). The second (32 channels) halves the resolution (stride 2)."""

    def __init__(self, planes: int, side: int, extras: int, hidden: int) -> None:
        super().__init__()
        if side < 3:
            raise ValueError(f"the convolutional encoder needs planes of at least 3x3, got "
                             f"{side}x{side}")
        self.planes, self.side, self.extras = planes, side, extras
        reduced = (side - 1) // 2
        self.conv = nn.Sequential(nn.Conv2d(planes, 16, 3), nn.ReLU(),
                                  nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(32 * reduced * reduced + extras, hidden), nn.Tanh())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        leading = observations.shape[:-1]
        flat = observations.reshape(-1, observations.shape[-1])
        grids = flat[:, :-self.extras].reshape(-1, self.planes, self.side, self.side)
        # Channels-last convolutions are faster on CPUs; their features are flattened in
        # (row, column, channel) order, a view of that layout.
        grids = grids.contiguous(memory_format=torch.channels_last)
        features = self.conv(grids).permute(0, 2, 3, 1).flatten(1)
        features = torch.cat([features, flat[:, -self.extras:]], dim=-1)
        return self.head(features).reshape(*leading, -1)


class TeamNetwork(nn.Module):
    """Actor-critic over flat uint8 observations: an encoder (a two-layer MLP, or with ``grid``
    the convolutional :class:`GridEncoder`), then (with ``memory``) a GRU that carries what the
    agent saw earlier in the episode, then the policy and value heads.

    Args:
        observation_size: length D of an observation.
        n_actions: discrete actions.
        hidden: width of the encoder's output (and of the GRU's state).
        scale: (D,) the factor each observation entry is multiplied by (to bring counters
            such as the step number to about [0, 1]).
        memory: add the GRU (a recurrent policy); without it the policy sees only the
            current observation.
        grid: ``(planes, side, extras)`` when the observation is ``planes`` planes over a
            ``side x side`` grid followed by ``extras`` numbers: encode it with convolutions;
            ``None``: the MLP.
    """

    def __init__(self, observation_size: int, n_actions: int, hidden: int,
                 scale: torch.Tensor, memory: bool = False,
                 grid: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        self.register_buffer("scale", scale.float())
        if grid is None:
            self.body = nn.Sequential(nn.Linear(observation_size, hidden), nn.Tanh(),
                                      nn.Linear(hidden, hidden), nn.Tanh())
        else:
            planes, side, extras = grid
            if planes * side * side + extras != observation_size:
                raise ValueError(f"a grid of {planes} planes of {side}x{side} and {extras} "
                                 f"extras does not make an observation of {observation_size}")
            self.body = GridEncoder(planes, side, extras, hidden)
        self.memory = nn.GRU(hidden, hidden) if memory else None
        self.policy = nn.Linear(hidden, n_actions)
        self.value = nn.Linear(hidden, 1)
        nn.init.orthogonal_(self.policy.weight, gain=0.01)
        nn.init.zeros_(self.policy.bias)

    def forward(self, observations: torch.Tensor, state: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Action logits (T, M, n_actions), values (T, M) and the memory after the last step
        ((1, M, hidden), ``None`` without memory) for ``observations`` (T, M, D) uint8: M
        agents' episodes, T steps each, starting from ``state`` (``None``: the start of an
        episode)."""
        features = self.body(observations.float() * self.scale)  # (T, M, hidden)
        if self.memory is not None:
            features, state = self.memory(features, state)
        return self.policy(features), self.value(features).squeeze(-1), state


def sample_actions(network: TeamNetwork, observations: torch.Tensor, generator: torch.Generator,
                   state: torch.Tensor | None = None, greedy: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Actions (M,) int64, their log-probabilities (M,), values (M,) and the network's memory
    after this step for one step's ``observations`` (M, D) of M agents whose memory is
    ``state`` (``None`` at the start of their episodes), sampled with ``generator`` (or the
    most likely with ``greedy``); no gradients."""
    with torch.no_grad():
        logits, values, state = network(observations[None], state)
        logits, values = logits[0], values[0]
        log_probs = torch.log_softmax(logits, dim=-1)
        if greedy:
            actions = logits.argmax(dim=-1)
        else:
            actions = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(-1)
        return actions, log_probs.gather(-1, actions[:, None]).squeeze(-1), values, state


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
    teacher: float


def ppo_loss(network: TeamNetwork, observations: torch.Tensor, actions: torch.Tensor,
             old_log_probs: torch.Tensor, advantage: torch.Tensor, returns: torch.Tensor,
             clip: float, value_coef: float, entropy_coef: float,
             teacher_actions: torch.Tensor | None = None,
             teacher_coef: float = 0.0,
             state: torch.Tensor | None = None,
             valid: torch.Tensor | None = None) -> tuple[torch.Tensor, LossTerms]:
    """The clipped surrogate objective plus value and entropy terms on a minibatch of M
    episodes (or pieces of episodes) of T steps (``observations`` (T, M, D), the rest
    (T, M); T = 1 for single steps of a network without memory); ``advantage`` is
    normalised here. With ``teacher_actions`` (T, M), the loss adds ``teacher_coef`` times
    the cross-entropy of the policy to them (kickstarting, Schmitt et al. 2018). ``state``
    (1, M, hidden): a recurrent network's memory at the first step (``None``: the episodes'
    start; pieces of episodes pass the memory they began with); ``valid`` (T, M) bool: the
    steps that count (``None``: all; the padding after an episode's end does not). Returns
    ``(loss, terms)``."""
    logits, values, _ = network(observations, state)
    keep = slice(None) if valid is None else valid.flatten()
    logits, values = logits.flatten(0, 1)[keep], values.flatten()[keep]
    actions, old_log_probs = actions.flatten()[keep], old_log_probs.flatten()[keep]
    advantage, returns = advantage.flatten()[keep], returns.flatten()[keep]
    if teacher_actions is not None:
        teacher_actions = teacher_actions.flatten()[keep]
    log_probs = torch.log_softmax(logits, dim=-1)
    new_log_probs = log_probs.gather(-1, actions[:, None]).squeeze(-1)
    ratio = (new_log_probs - old_log_probs).exp()
    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    policy_loss = -torch.min(ratio * advantage,
                             ratio.clamp(1 - clip, 1 + clip) * advantage).mean()
    value_loss = 0.5 * (values - returns).pow(2).mean()
    entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
    loss = policy_loss + value_coef * value_loss - entropy_coef * entropy
    teacher = torch.zeros(())
    if teacher_actions is not None:
        teacher = -log_probs.gather(-1, teacher_actions[:, None]).mean()
        loss = loss + teacher_coef * teacher
    terms = LossTerms(policy_loss.item(), value_loss.item(), entropy.item(),
                      ((ratio - 1).abs() > clip).float().mean().item(), teacher.item())
    return loss, terms
