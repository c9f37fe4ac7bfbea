"""``rlgan worldmodel dream``: a pygame window with the real game and the dream side by side.

Keys: the env's own (``get_keys_to_action()``, the arrow keys for driving) drive both; R
re-syncs the dream with the real frames; Escape or closing the window quits. Runs headless
with ``SDL_VIDEODRIVER=dummy`` (then use ``--agent scripted`` and ``--steps``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlgan.worldmodel.dream import Dream
from rlgan.worldmodel.predictor import WorldModel

GAP = 8  # pixels between the two frames
LABEL_HEIGHT = 22


def side_by_side(real: np.ndarray, dream: np.ndarray, scale: int) -> np.ndarray:
    """``[real | gap | dream]`` enlarged ``scale`` times (nearest neighbour), uint8 RGB."""
    def enlarge(frame: np.ndarray) -> np.ndarray:
        frame = np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)
        return np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame

    left, right = enlarge(real), enlarge(dream)
    gap = np.full((left.shape[0], GAP, 3), 255, np.uint8)
    return np.concatenate([left, gap, right], axis=1)


class _Window:
    """The pygame window: two labelled frames."""

    def __init__(self, width: int, height: int) -> None:
        import pygame

        pygame.display.init()
        pygame.font.init()
        pygame.display.set_caption("rlgan worldmodel dream: real (left) and dream (right)")
        self.pygame = pygame
        self.surface = pygame.display.set_mode((width, height + LABEL_HEIGHT))
        self.font = pygame.font.Font(None, 20)
        self.height = height

    def events(self) -> tuple[bool, bool]:
        """``(quit, resync)`` from the events since the last call."""
        pygame = self.pygame
        quit_requested = resync = False
        for event in pygame.event.get((pygame.QUIT, pygame.KEYDOWN)):
            if event.type == pygame.QUIT or event.key == pygame.K_ESCAPE:
                quit_requested = True
            elif event.key == pygame.K_r:
                resync = True
        return quit_requested, resync

    def show(self, image: np.ndarray, left_label: str, right_label: str) -> None:
        pygame = self.pygame
        self.surface.fill((0, 0, 0))
        self.surface.blit(pygame.surfarray.make_surface(image.swapaxes(0, 1)), (0, LABEL_HEIGHT))
        half = (image.shape[1] + GAP) // 2
        for text, x in ((left_label, 4), (right_label, half + 4)):
            self.surface.blit(self.font.render(text, True, (255, 255, 255)), (x, 4))
        pygame.display.flip()

    def close(self) -> None:
        self.pygame.display.quit()


def run_dream_window(run: str | Path, env_id: str | None = None,
                     env_kwargs: Mapping[str, Any] | None = None, agent: str = "human",
                     steps: int | None = None, sync_every: int = 0, scale: int = 4,
                     fps: float | None = None, video: str | Path | None = None, seed: int = 0,
                     device: str | torch.device = "cpu") -> dict[str, Any]:
    """Drive the real game and the world model's dream side by side in a pygame window.

    Args:
        run: world-model run directory.
        env_id, env_kwargs: the real game (default: the env and options the model was trained
            on; ``env_kwargs`` update those options, e.g. ``{"map": "night"}``).
        agent: who drives: ``"human"`` (the keyboard), ``"scripted"``, ``"random"`` or the run
            directory of ``rlgan train``.
        steps: stop after this many steps (None: until Escape).
        sync_every: also re-sync the dream every this many steps (0: only on R / episode end).
        scale: screen pixels per frame pixel.
        fps: pacing (None: the env's ``render_fps``; 0: no pacing).
        video: also write the side-by-side frames to this ``.gif``/``.mp4``.
        seed: seed of the first episode and of the noise.
        device: where the model runs.

    Returns:
        ``steps``, ``episodes``, ``syncs``, ``mean_psnr`` (dream vs real, dB) and ``video``.

    Raises:
        ValueError: bad arguments, or a model trained for another env or frame size.
    """
    from rlgan.data.record import make_policy
    from rlgan.make import make_env
    from rlgan.video import check_video_path, write_video

    if scale < 1 or sync_every < 0 or (steps is not None and steps < 1):
        raise ValueError(f"need scale >= 1, sync_every >= 0 and steps >= 1, got scale={scale}, "
                         f"sync_every={sync_every}, steps={steps}")
    if video:
        check_video_path(video)
    model = WorldModel.load(run, device)
    env_id = env_id or model.env_id
    base_kwargs = model.env_kwargs if env_id == model.env_id else {}
    env = make_env(env_id, **{**base_kwargs, **(env_kwargs or {})})
    try:
        dream = Dream(model, env, seed)
        act = make_policy(agent, env, seed=seed)
        fps = env.metadata.get("render_fps", 10) if fps is None else fps
        drive = _Drive(keep_frames=bool(video))
        drive.run(dream, act, steps, sync_every, scale, fps)
    finally:
        env.close()
    written = str(write_video(video, drive.frames, fps=int(fps) or 10)) if video and drive.frames else None
    return {"steps": drive.steps, "episodes": drive.episodes, "syncs": drive.syncs,
            "mean_psnr": float(np.mean(drive.scores)) if drive.scores else None, "video": written}


@dataclass
class _Drive:
    """One session of :func:`run_dream_window`: its counts, the dream's PSNR at every step
    (dB) and, with ``keep_frames``, the side-by-side frames shown."""

    keep_frames: bool
    frames: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    steps: int = 0
    episodes: int = 1
    syncs: int = 0

    def run(self, dream: Dream, act: Callable[[np.ndarray], int], steps: int | None,
            sync_every: int, scale: int, fps: float) -> None:
        """Step the real game and the dream with ``act`` in a window until ``steps`` steps,
        Escape or a closed window, re-syncing on R, every ``sync_every`` steps (0: never) and
        at each episode's start; ``fps`` paces the steps (0: as fast as they come)."""
        from rlgan.keyboard import StopPlaying

        observation = dream.reset()
        height, width = observation.shape[:2]
        window = _Window(2 * width * scale + GAP, height * scale)
        clock = window.pygame.time.Clock()
        try:
            while steps is None or self.steps < steps:
                quit_requested, resync = window.events()
                if quit_requested:
                    break
                if resync or (sync_every and dream.steps_since_sync >= sync_every):
                    dream.sync()
                    self.syncs += 1
                result = dream.step(act(observation))
                observation = self._show(window, dream, result, scale)
                if result["done"]:
                    observation = dream.reset()
                    self.episodes += 1
                if fps:
                    clock.tick(fps)
        except StopPlaying:
            pass
        finally:
            window.close()

    def _show(self, window: _Window, dream: Dream, result: dict[str, Any], scale: int) -> np.ndarray:
        """Count the step, show the real frame beside the dream's; return the real frame."""
        self.scores.append(result["psnr"])
        self.steps += 1
        image = side_by_side(result["real"], result["dream"], scale)
        window.show(image, f"real  step {self.steps}",
                    f"dream  {dream.steps_since_sync} steps open loop, PSNR {result['psnr']:.1f} dB")
        if self.keep_frames:
            self.frames.append(image)
        return result["real"]
