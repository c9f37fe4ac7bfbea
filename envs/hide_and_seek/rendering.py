"""pygame drawing of a hide-and-seek grid, shading the cells the seekers can see."""

from __future__ import annotations

import numpy as np
import pygame

from rlgan.envs.hide_and_seek.core import BOX, FREE, LOCKED_BY_HIDERS, MOVES, GridBatch

CELL = 32
COLOURS = {
    "floor": (225, 225, 215), "seen": (250, 215, 120), "wall": (60, 60, 70),
    "box": (160, 110, 50), "hider_lock": (60, 120, 230), "seeker_lock": (220, 60, 50),
    "hider": (40, 100, 220), "seeker": (210, 40, 40), "text": (20, 20, 20),
}


class GridRenderer:
    """Draw grid ``index`` of a batch as an ``(S, S, 3)`` uint8 frame; ``show`` it in a window."""

    def __init__(self, fps: int) -> None:
        self.fps = fps
        self.window: pygame.Surface | None = None
        self.clock: pygame.time.Clock | None = None
        if not pygame.font.get_init():
            pygame.font.init()
        self.font = pygame.font.Font(None, 20)

    def frame(self, grid: GridBatch, index: int) -> np.ndarray:
        size = grid.size
        surface = pygame.Surface((size * CELL, size * CELL + CELL))
        surface.fill(COLOURS["floor"])
        seen = grid.seen_cells()[index]
        for cell in range(grid.cells):
            row, col = divmod(cell, size)
            rect = pygame.Rect(col * CELL, row * CELL, CELL, CELL)
            if grid.walls[index, cell]:
                pygame.draw.rect(surface, COLOURS["wall"], rect)
                continue
            if seen[cell]:
                pygame.draw.rect(surface, COLOURS["seen"], rect)
            pygame.draw.rect(surface, (205, 205, 195), rect, 1)
            box = grid.boxes[index, cell]
            if box != FREE:
                pygame.draw.rect(surface, COLOURS["box"], rect.inflate(-6, -6))
                if box != BOX:
                    lock = "hider_lock" if box == LOCKED_BY_HIDERS else "seeker_lock"
                    pygame.draw.rect(surface, COLOURS[lock], rect.inflate(-6, -6), 3)
        for agent in range(grid.n_agents):
            row, col = divmod(int(grid.agents[index, agent]), size)
            centre = (col * CELL + CELL // 2, row * CELL + CELL // 2)
            colour = COLOURS["seeker" if grid.is_seeker[agent] else "hider"]
            pygame.draw.circle(surface, colour, centre, CELL // 2 - 4)
            d_row, d_col = MOVES[grid.facing[index, agent]]
            tip = (centre[0] + d_col * (CELL // 2 - 2), centre[1] + d_row * (CELL // 2 - 2))
            pygame.draw.line(surface, (255, 255, 255), centre, tip, 3)
        phase = "preparation" if grid.in_prep()[index] else "seek"
        text = self.font.render(f"step {grid.steps[index]}/{grid.config.max_steps}  {phase}",
                                True, COLOURS["text"])
        surface.blit(text, (6, size * CELL + 8))
        return pygame.surfarray.array3d(surface).swapaxes(0, 1).copy()

    def show(self, frame: np.ndarray) -> None:
        if self.window is None:
            pygame.display.init()
            pygame.display.set_caption("rlgan hide-and-seek")
            self.window = pygame.display.set_mode((frame.shape[1], frame.shape[0]))
            self.clock = pygame.time.Clock()
        pygame.surfarray.blit_array(self.window, frame.swapaxes(0, 1))
        pygame.event.pump()
        pygame.display.flip()
        self.clock.tick(self.fps)

    def close(self) -> None:
        if self.window is not None:
            pygame.display.quit()
            self.window = None
