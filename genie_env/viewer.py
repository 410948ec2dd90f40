"""A pygame window that shows frames, scaled up, with a line of text: the ``human`` render mode and genie-play."""

from __future__ import annotations

import numpy as np


class Viewer:
    """Shows RGB frames in a window ``scale`` times larger, with an optional caption line under the image."""

    def __init__(self, caption: str = "genie-env", scale: int = 8):
        import pygame

        self._pg = pygame
        self.caption, self.scale = caption, int(scale)
        self._screen = None
        self._font = None
        pygame.display.init()
        pygame.font.init()

    def show(self, frame: np.ndarray, text: str = "") -> None:
        pg = self._pg
        h, w = frame.shape[:2]
        size = (w * self.scale, h * self.scale + 24)
        if self._screen is None or self._screen.get_size() != size:
            self._screen = pg.display.set_mode(size)
            pg.display.set_caption(self.caption)
            self._font = pg.font.Font(None, 22)
        surface = pg.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        self._screen.fill((0, 0, 0))
        self._screen.blit(pg.transform.scale(surface, (size[0], size[1] - 24)), (0, 0))
        if text:
            self._screen.blit(self._font.render(text, True, (230, 230, 230)), (4, size[1] - 20))
        pg.event.pump()
        pg.display.flip()

    def close(self) -> None:
        if self._screen is not None:
            self._pg.display.quit()
            self._screen = None
