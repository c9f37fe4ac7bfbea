"""stable-baselines3's DQN with options SB3 lacks: a Double-DQN target, a dueling head, the
TD loss and a smaller image network.

``DQN(policy, env, double=True, loss="mse", policy_kwargs={"dueling": True, "cnn": "small"})``
— everything else is SB3's (replay buffer, n-step returns, exploration schedule, target
updates, logging).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import DQN as SB3DQN
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN, create_mlp
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn


def dqn_target(rewards: torch.Tensor, dones: torch.Tensor, discounts: torch.Tensor | float,
               next_q_target: torch.Tensor, next_q_online: torch.Tensor | None = None) -> torch.Tensor:
    """The 1-step TD target ``r + discount * (1 - done) * Q_target(s', a*)``.

    ``a*`` is the target network's argmax (DQN) or, given ``next_q_online``, the online
    network's argmax (Double DQN, van Hasselt et al. 2016). Shapes: (B, 1) and (B, A).
    """
    if next_q_online is None:
        next_value = next_q_target.max(dim=1, keepdim=True).values
    else:
        next_value = next_q_target.gather(1, next_q_online.argmax(dim=1, keepdim=True))
    return rewards + (1 - dones) * discounts * next_value


class DuelingHead(nn.Module):
    """``Q(s, a) = V(s) + A(s, a) - mean_a A(s, a)`` (Wang et al. 2016): the hidden layers of
    ``net_arch`` are shared, and two linear outputs give ``V`` and ``A``, so the head costs
    one output layer more than a plain Q head."""

    def __init__(self, features_dim: int, n_actions: int, net_arch: list[int],
                 activation_fn: type[nn.Module]) -> None:
        super().__init__()
        self.trunk = nn.Sequential(*create_mlp(features_dim, -1, net_arch, activation_fn))
        hidden_dim = net_arch[-1] if net_arch else features_dim
        self.value = nn.Sequential(nn.Linear(hidden_dim, 1))
        self.advantage = nn.Sequential(nn.Linear(hidden_dim, n_actions))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, features_dim)`` -> Q-values ``(B, n_actions)``."""
        hidden = self.trunk(features)
        advantage = self.advantage(hidden)
        return self.value(hidden) + advantage - advantage.mean(dim=1, keepdim=True)


class DuelingQNetwork(QNetwork):
    """SB3's Q-network with :class:`DuelingHead` in place of its MLP."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.q_net = DuelingHead(self.features_dim, int(self.action_space.n), self.net_arch,
                                 self.activation_fn)


class RawPixels:
    """For an image network with ``cnn`` (a ``Sequential`` opening with a ``Conv2d``) and
    ``linear``: it takes pixels in [0, 255] (``normalize_images=False``) and divides its first
    filters by 255 instead of every pixel, the same function without a pass over each batch of
    frames."""

    raw_pixels = True
    cnn: nn.Sequential
    linear: nn.Module

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` float pixels in [0, 255] -> ``(B, features_dim)``."""
        first, *rest = self.cnn
        hidden = F.conv2d(frames, first.weight / 255, first.bias, first.stride)
        for layer in rest:
            hidden = layer(hidden)
        return self.linear(hidden)


class SmallCNN(RawPixels, BaseFeaturesExtractor):
    """The network of the first DQN (Mnih et al. 2013): 16 8x8 filters with stride 4, 32 4x4
    filters with stride 2 and 256 units, ReLUs, taking raw pixels (:class:`RawPixels`). On
    (4, 84, 84) frames it costs a third of :class:`NatureCNN`'s multiply-adds per frame."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 256) -> None:
        super().__init__(observation_space, features_dim)
        self.cnn = nn.Sequential(nn.Conv2d(observation_space.shape[0], 16, 8, stride=4), nn.ReLU(),
                                 nn.Conv2d(16, 32, 4, stride=2), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            flat = self.cnn(torch.zeros(1, *observation_space.shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(flat, features_dim), nn.ReLU())


class RawPixelNatureCNN(RawPixels, NatureCNN):
    """SB3's :class:`NatureCNN` (Mnih et al. 2015; the same layers and parameter names) taking
    raw pixels (:class:`RawPixels`)."""


#: Modules that compute differently in train and eval mode.
MODE_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)

#: Image networks by name (``policy_kwargs={"cnn": name}``).
CNNS = {"nature": RawPixelNatureCNN, "small": SmallCNN}


class RLGanDQNPolicy(DQNPolicy):
    """SB3's ``DQNPolicy`` with ``dueling`` (bool) and ``cnn`` (a key of :data:`CNNS`, for
    image observations; default ``"nature"``) in ``policy_kwargs``. The CNN's features feed
    the Q head directly (``net_arch=[]``, as in both DQN papers) unless ``net_arch`` is given.
    Adam runs fused (one kernel for all parameters) unless ``optimizer_kwargs`` say otherwise."""

    def __init__(self, observation_space, action_space, lr_schedule, dueling: bool = False,
                 cnn: str = "nature", **kwargs: Any) -> None:
        if cnn not in CNNS:
            raise ValueError(f"unknown cnn {cnn!r}; choose from {', '.join(CNNS)}")
        self.dueling, self.cnn = dueling, cnn
        if len(observation_space.shape) == 3 and "features_extractor_class" not in kwargs:
            kwargs["features_extractor_class"] = CNNS[cnn]
            kwargs.setdefault("net_arch", [])
            if getattr(CNNS[cnn], "raw_pixels", False):
                kwargs["normalize_images"] = False
        if kwargs.get("optimizer_class", torch.optim.Adam) is torch.optim.Adam:
            kwargs["optimizer_kwargs"] = {"fused": True, **kwargs.get("optimizer_kwargs", {})}
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
        self.modes_differ = any(isinstance(module, MODE_DEPENDENT) for module in self.modules())

    def set_training_mode(self, mode: bool) -> None:
        """Set the train/eval mode only where it changes something: SB3 sets it before every
        action and every update, walking all modules each time, though a network without
        dropout or batch norm computes the same in both modes."""
        if self.modes_differ and mode != self.q_net.training:
            super().set_training_mode(mode)

    def make_q_net(self) -> QNetwork:
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        network = DuelingQNetwork if self.dueling else QNetwork
        return network(**net_args).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "dueling": self.dueling, "cnn": self.cnn}


TD_LOSSES = {"huber": F.smooth_l1_loss, "mse": F.mse_loss}


class DQN(SB3DQN):
    """SB3's DQN with ``double`` (Double-DQN target), ``loss`` and :class:`RLGanDQNPolicy`.

    ``loss="huber"`` (SB3's and Nature DQN's, for rewards clipped to [-1, 1]) caps the gradient
    of a large TD error at 1; ``"mse"`` keeps it whole, so rare large rewards (a crash penalty
    among many small progress rewards) are learned from as strongly as they deserve.
    """

    policy_aliases = {"MlpPolicy": RLGanDQNPolicy, "CnnPolicy": RLGanDQNPolicy,
                      "RLGanDQNPolicy": RLGanDQNPolicy}

    def __init__(self, policy: Any, env: Any, double: bool = False, loss: str = "huber",
                 **kwargs: Any) -> None:
        if loss not in TD_LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(TD_LOSSES)}")
        self.double, self.loss = double, loss
        super().__init__(policy, env, **kwargs)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        """SB3's DQN update with :func:`dqn_target` (Double DQN when ``double``)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses = []
        parameters = [p for group in self.policy.optimizer.param_groups for p in group["params"]]
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = data.discounts if data.discounts is not None else self.gamma
            next_observations = data.next_observations.float()  # once for both networks
            with torch.no_grad():
                online = self.q_net(next_observations) if self.double else None
                target = dqn_target(data.rewards, data.dones, discounts,
                                    self.q_net_target(next_observations), online)
            current = torch.gather(self.q_net(data.observations), dim=1, index=data.actions.long())
            loss = TD_LOSSES[self.loss](current, target)
            losses.append(loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, self.max_grad_norm)
            self.policy.optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", float(np.mean(losses)))

    def q_values(self, observation: np.ndarray) -> np.ndarray:
        """Q-values of every action for one observation, ``(n_actions,)``."""
        tensor, _ = self.policy.obs_to_tensor(observation)
        with torch.no_grad():
            return self.q_net(tensor)[0].cpu().numpy()
