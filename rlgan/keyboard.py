"""A person at the keyboard as a policy: pressed keys -> action, read from pygame each step."""

from __future__ import annotations

import gymnasium
import numpy as np


class StopPlaying(Exception):
    """Raised by :class:`KeyboardPolicy` when the player closes the window or presses Escape."""


class KeyboardPolicy:
    """Map the keys held down right now to an action with the env's ``get_keys_to_action()``.

    The mapping's keys are sorted tuples of pygame key codes; the empty tuple ``()`` gives the
    action taken when no mapped key is held. A combination not in the mapping falls back to the
    first held key that is mapped alone. The env must render in ``"human"`` mode (a pygame
    window), which is where the key events come from.

    Raises:
        ValueError: the env has no ``get_keys_to_action``.
    """

    def __init__(self, env: gymnasium.Env) -> None:
        if not env.has_wrapper_attr("get_keys_to_action"):
            raise ValueError(f"{env.spec.id if env.spec else env} has no get_keys_to_action(); "
                             "it cannot be played from the keyboard")
        self.keys_to_action = {tuple(sorted(keys)): action
                               for keys, action in env.get_wrapper_attr("get_keys_to_action")().items()}
        self.keys = sorted({key for combo in self.keys_to_action for key in combo})
        self.default_action = self.keys_to_action.get((), 0)

    def __call__(self, observation: np.ndarray) -> int:
        import pygame

        for event in pygame.event.get((pygame.QUIT, pygame.KEYDOWN)):
            if event.type == pygame.QUIT or event.key == pygame.K_ESCAPE:
                raise StopPlaying
        pressed = pygame.key.get_pressed()
        held = tuple(key for key in self.keys if pressed[key])
        if held in self.keys_to_action:
            return self.keys_to_action[held]
        for key in held:
            if (key,) in self.keys_to_action:
                return self.keys_to_action[(key,)]
        return self.default_action
