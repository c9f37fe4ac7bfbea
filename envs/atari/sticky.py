"""Sticky actions in Python, so the action they repeat is part of a saved state."""

from __future__ import annotations

import gymnasium

NOOP = 0  # the first action of every ALE action set, minimal or full


class StickyActions(gymnasium.ActionWrapper):
    """ALE's sticky actions (Machado et al., 2018), one emulator frame per ``step``.

    On every frame the previous frame's action is kept with probability
    ``repeat_action_probability``, else the agent's action is taken; an episode starts from
    NOOP, as in ALE. ALE does the same inside the emulator, but ``cloneState`` leaves out the
    action it would repeat, so a restored game could repeat another action than the saved one.
    Here that action is :attr:`last_action` and the draws come from the wrapped env's
    ``np_random``, both of which :class:`~rlgan.envs.atari.env.AtariEnv` saves.

    Args:
        env: an ALE env with ``frameskip=1`` and ``repeat_action_probability=0``.
        repeat_action_probability: probability of repeating the previous frame's action, in [0, 1].

    Raises:
        ValueError: ``repeat_action_probability`` outside [0, 1].
    """

    def __init__(self, env: gymnasium.Env, repeat_action_probability: float) -> None:
        if not 0.0 <= repeat_action_probability <= 1.0:
            raise ValueError(f"repeat_action_probability must be in [0, 1], got "
                             f"{repeat_action_probability!r}")
        super().__init__(env)
        self.repeat_action_probability = repeat_action_probability
        self.last_action = NOOP

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.last_action = NOOP
        return self.env.reset(seed=seed, options=options)

    def action(self, action: int) -> int:
        """The action this frame plays: ``action``, or with the set probability the last one."""
        p = self.repeat_action_probability
        if p == 0.0 or self.env.unwrapped.np_random.random() >= p:
            self.last_action = int(action)
        return self.last_action
