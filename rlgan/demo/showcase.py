"""The demo's picture: the real game beside the world model's prediction for every action, with
the shield's verdicts, shown in a pygame window or returned as frames for a video.

Layout of one frame (pixels)::

    +-----------------+---------------------------------------------+
    | real game       | predicted next frame for LEFT | RIGHT | UP  |
    | 256 x 256 (HUD) | 128 x 128 each, with safe depth and P(unsafe)|
    +-----------------+---------------------------------------------+
    | banner: the agent's action, the shield's action, intervention          |

The agent's action is framed yellow, the action the shield lets through green; a predicted frame
whose first step the classifier calls unsafe is framed red.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlgan.demo.evaluation import DRIVING, demo_env_kwargs, load_parts
from rlgan.demo.weights import DemoWeights

TILE = 128
MARGIN = 8
BANNER = 44
COLOURS = {"text": (235, 235, 235), "safe": (60, 200, 90), "unsafe": (230, 60, 60),
           "agent": (250, 210, 40), "background": (24, 24, 28)}


@dataclass(frozen=True)
class StepView:
    """What one frame of the showcase shows.

    Attributes:
        real: uint8 ``(S, S, 3)``, the game as rendered (with its HUD).
        predicted: uint8 ``(A, H, W, C)``, the world model's next frame for every action.
        unsafe_probability: float ``(A,)``, the classifier's P(unsafe) of each first step.
        safe_depths: int ``(A,)``, the learned search's safe depth of every action.
        depth: the search depth.
        proposed, chosen: the agent's action and the action the shield let through.
        action_names: names of the actions.
        step: step number in the episode.
    """

    real: np.ndarray
    predicted: np.ndarray
    unsafe_probability: np.ndarray
    safe_depths: np.ndarray
    depth: int
    proposed: int
    chosen: int
    action_names: tuple[str, ...]
    step: int


def predictions(search: Any, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The world model's next frame and the classifier's P(unsafe) for every action.

    Args:
        search: a :class:`rlgan.safety.search.LearnedSearch`.
        frames: uint8 ``(history, H, W, C)``, oldest first.

    Returns:
        uint8 ``(A, H, W, C)`` frames (the first noise sample) and float ``(A,)`` probabilities
        (the largest over the search's noise samples): the search's own first level.
    """
    from rlgan.safety.search import frames_to_tensor
    from rlgan.worldmodel.frames import tensor_to_observations, to_uint8

    root = frames_to_tensor(frames, search.predictor.frame_shape, search.history).to(search.device)
    children, probability = search.expand(root, torch.arange(search.n_actions, device=search.device))
    return tensor_to_observations(to_uint8(children[:, 0])), probability.cpu().numpy()


def compose(view: StepView) -> np.ndarray:
    """The frame of ``view`` as uint8 RGB ``(height, width, 3)`` (drawn with pygame)."""
    import pygame

    pygame.font.init()
    size = view.real.shape[0]
    n_actions = len(view.action_names)
    width = size + MARGIN + n_actions * (TILE + MARGIN)
    surface = pygame.Surface((width, size + BANNER))
    surface.fill(COLOURS["background"])
    surface.blit(pygame.surfarray.make_surface(view.real.swapaxes(0, 1)), (0, 0))
    font = pygame.font.Font(None, 20)
    big = pygame.font.Font(None, 26)
    top = (size - TILE) // 2
    for action, name in enumerate(view.action_names):
        left = size + MARGIN + action * (TILE + MARGIN)
        frame = view.predicted[action]
        if frame.shape[2] == 1:
            frame = np.repeat(frame, 3, axis=2)
        scale = TILE // frame.shape[0]
        tile = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
        surface.blit(pygame.surfarray.make_surface(tile.swapaxes(0, 1)), (left, top))
        unsafe_now = view.safe_depths[action] == 0
        border = COLOURS["unsafe"] if unsafe_now else COLOURS["safe"]
        pygame.draw.rect(surface, border, (left - 2, top - 2, TILE + 4, TILE + 4), 2)
        if action == view.proposed:
            pygame.draw.rect(surface, COLOURS["agent"], (left - 5, top - 5, TILE + 10, TILE + 10), 2)
        if action == view.chosen:
            pygame.draw.rect(surface, COLOURS["safe"], (left - 7, top - 7, TILE + 14, TILE + 14), 3)
        surface.blit(big.render(name, True, COLOURS["text"]), (left, top - 26))
        depth = f"safe depth {view.safe_depths[action]}/{view.depth}"
        surface.blit(font.render(depth, True, border), (left, top + TILE + 6))
        probability = f"P(unsafe) {view.unsafe_probability[action]:.2f}"
        surface.blit(font.render(probability, True, COLOURS["text"]), (left, top + TILE + 22))
    proposed, chosen = view.action_names[view.proposed], view.action_names[view.chosen]
    if view.proposed != view.chosen:
        text, colour = f"step {view.step}: agent pressed {proposed}, SHIELD took {chosen}", COLOURS["unsafe"]
    else:
        text, colour = f"step {view.step}: agent pressed {proposed}, shield agrees", COLOURS["safe"]
    surface.blit(big.render(text, True, colour), (MARGIN, size + 12))
    return np.ascontiguousarray(pygame.surfarray.array3d(surface).swapaxes(0, 1))


class Window:
    """A pygame window that shows composed frames; Escape or closing it stops the demo."""

    def __init__(self, fps: float) -> None:
        import pygame

        pygame.display.init()
        pygame.display.set_caption("rlgan demo: the DQN agent under the SAD-GAN shield")
        self.pygame, self.fps = pygame, fps
        self.surface = None
        self.clock = pygame.time.Clock()

    def show(self, image: np.ndarray) -> bool:
        """Draw ``image``; False once the user closed the window."""
        pygame = self.pygame
        if self.surface is None:
            self.surface = pygame.display.set_mode((image.shape[1], image.shape[0]))
        for event in pygame.event.get((pygame.QUIT, pygame.KEYDOWN)):
            if event.type == pygame.QUIT or event.key == pygame.K_ESCAPE:
                return False
        self.surface.blit(pygame.surfarray.make_surface(image.swapaxes(0, 1)), (0, 0))
        pygame.display.flip()
        self.clock.tick(self.fps)
        return True

    def close(self) -> None:
        self.pygame.display.quit()


def run_showcase(weights: DemoWeights, map_name: str, max_steps: int, seed: int = 0,
                 device: str | torch.device = "cpu", window: Window | None = None) -> list[np.ndarray]:
    """Episodes of the agent under the GAN shield on ``map_name`` (starting in hazards, as the
    demo's rows do), composed frame by frame, ``max_steps`` frames in all.

    Returns:
        The composed frames (for a video); shown in ``window`` as well when one is given.
    """
    from rlgan.envs.driving.simulation import Action
    from rlgan.make import make_env

    env = make_env(DRIVING, render_mode="rgb_array", **demo_env_kwargs(map_name, max_steps))
    parts = load_parts(weights, env, torch.device(device), lazy=False)
    shield, search = parts["gan_shield"], parts["search"]
    depth = search.config.depth
    names = tuple(Action(action).name for action in range(int(env.action_space.n)))
    frames = []
    try:
        episode = 0
        observation, _ = env.reset(seed=seed)
        shield.reset()
        for step in range(1, max_steps + 1):
            real = env.render()
            proposed = parts["policy"].act(observation, env)
            decision = shield.decide(observation, proposed, env)
            predicted, probability = predictions(search, np.stack(shield.history))
            image = compose(StepView(real, predicted, probability, decision.safe_depths, depth,
                                     proposed, decision.shielded_action, names, step))
            frames.append(image)
            if window is not None and not window.show(image):
                break
            observation, _, terminated, truncated, _ = env.step(decision.shielded_action)
            if terminated or truncated:
                episode += 1
                observation, _ = env.reset(seed=seed + episode)
                shield.reset()
    finally:
        parts["oracle_shield"].search.close()
        env.close()
    return frames
