"""pygame side of the driving game: the HUD over a large frame, and the human window."""

from __future__ import annotations

import numpy as np
import pygame


class Display:
    """Draw a HUD (speed, distance, crashes) on frames and show them in a window.

    Args:
        size: side of the square frame in pixels.
        fps: frames per second of the human window.
    """

    def __init__(self, size: int, fps: int) -> None:
        self.size, self.fps = size, fps
        self.window: pygame.Surface | None = None
        self.clock: pygame.time.Clock | None = None
        if not pygame.font.get_init():
            pygame.font.init()
        self.font = pygame.font.Font(None, max(12, size // 14))

    def with_hud(self, frame: np.ndarray, speed: float, distance: float, crashes: int) -> np.ndarray:
        """Return ``frame`` (H, W, 3) uint8 with the HUD drawn in its top-left corner."""
        surface = pygame.surfarray.make_surface(frame.swapaxes(0, 1))
        lines = [f"{speed * 3.6:5.0f} km/h", f"{distance / 1000:5.2f} km", f"crashes {crashes}"]
        y = 4
        for line in lines:
            shadow = self.font.render(line, True, (0, 0, 0))
            text = self.font.render(line, True, (255, 255, 255))
            surface.blit(shadow, (5, y + 1))
            surface.blit(text, (4, y))
            y += text.get_height()
        return pygame.surfarray.array3d(surface).swapaxes(0, 1).copy()

    def show(self, frame: np.ndarray) -> None:
        """Show ``frame`` in the window (opened on first use) and wait for the next tick."""
        if self.window is None:
            pygame.display.init()
            pygame.display.set_caption("rlgan driving")
            self.window = pygame.display.set_mode((frame.shape[1], frame.shape[0]))
            self.clock = pygame.time.Clock()
        pygame.surfarray.blit_array(self.window, frame.swapaxes(0, 1))
        pygame.event.pump()
        pygame.display.flip()
        self.clock.tick(self.fps)

    def close(self) -> None:
        """Close the window if one is open."""
        if self.window is not None:
            pygame.display.quit()
            self.window = None
