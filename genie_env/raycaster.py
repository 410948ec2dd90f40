"""A vectorised numpy raycaster that draws a grid world in first person.

One ray per screen column walks the grid with a DDA (digital differential analyser, as in Wolfenstein 3D);
the walk is a Python loop over *grid steps*, every operation inside it is vectorised over all columns, and
every pixel operation afterwards is a whole-image numpy expression. There are no per-pixel Python loops.

Conventions (those of MiniGrid): the grid is indexed ``[x, y]`` with ``x`` to the right and ``y`` down; the
agent stands at the centre of its cell, ``(x + 0.5, y + 0.5)``; ``direction`` 0, 1, 2, 3 looks towards +x,
+y, -x, -y. The camera is half a wall high and pixels are square, so the focal length in pixels is
``f = (W / 2) / tan(fov / 2)`` on both axes and a wall at perpendicular distance ``d`` spans ``f / d`` rows.

What is drawn, back to front with a per-pixel depth buffer:

- a ceiling gradient and a checkerboard floor (floor casting), both shaded by distance;
- walls, with darker cell seams and darker y-facing sides; closed doors in their colour with a frame and a
  handle; locked doors darker with a boarded-up X; open doors as an empty doorway with a coloured frame;
- keys, balls, boxes (and goal / lava tiles) as camera-facing sprites sorted by depth, occluded by walls;
- the carried object, large, in the lower middle of the view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Cell codes of the solid map the rays walk.
EMPTY, WALL, DOOR_CLOSED, DOOR_LOCKED, DOOR_OPEN = 0, 1, 2, 3, 4

# Sprite kinds and their size in world units: (half width, height above the floor).
SPRITE_SIZES = {
    "ball": (0.24, 0.48),
    "box": (0.28, 0.56),
    "key": (0.26, 0.36),
    "goal": (0.45, 0.06),
    "lava": (0.45, 0.06),
}

# Object colours, the same names as MiniGrid's (RGB in 0..1).
OBJECT_COLORS = {
    "red": (0.90, 0.12, 0.12),
    "green": (0.10, 0.80, 0.20),
    "blue": (0.15, 0.30, 0.95),
    "purple": (0.50, 0.20, 0.80),
    "yellow": (0.95, 0.85, 0.10),
    "grey": (0.55, 0.55, 0.55),
    "orange": (1.00, 0.50, 0.05),
}

_DIR_TO_VEC = np.array([(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)])


@dataclass(frozen=True)
class Palette:
    """The look of one world: colours (RGB in 0..1), light level and field of view."""

    wall: tuple[float, float, float] = (0.62, 0.60, 0.56)
    floor_a: tuple[float, float, float] = (0.42, 0.36, 0.30)
    floor_b: tuple[float, float, float] = (0.30, 0.26, 0.22)
    ceiling: tuple[float, float, float] = (0.55, 0.62, 0.70)
    light: float = 1.0
    fov_degrees: float = 66.0
    fog: float = 0.12  # distance shading: brightness = light * exp(-fog * distance)

    @staticmethod
    def from_seed(seed: int) -> "Palette":
        """Draw a palette from a level seed: the same seed always gives the same look."""
        rng = np.random.default_rng([int(seed) % (2**63), 0x3D])

        def hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
            i = int(h * 6.0) % 6
            f = h * 6.0 - int(h * 6.0)
            p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
            rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
            return tuple(float(c) for c in rgb)

        floor_hue, floor_v = rng.uniform(0, 1), rng.uniform(0.30, 0.55)
        contrast = rng.uniform(0.65, 0.85)
        floor_s = rng.uniform(0.1, 0.45)
        return Palette(
            wall=hsv(rng.uniform(0, 1), rng.uniform(0.08, 0.45), rng.uniform(0.45, 0.80)),
            floor_a=hsv(floor_hue, floor_s, floor_v),
            floor_b=hsv(floor_hue, floor_s, floor_v * contrast),
            ceiling=hsv(rng.uniform(0, 1), rng.uniform(0.05, 0.35), rng.uniform(0.50, 0.85)),
            light=float(rng.uniform(0.75, 1.15)),
            fov_degrees=float(rng.uniform(58.0, 74.0)),
        )


@dataclass(frozen=True)
class Sprite:
    """An object standing in a cell: kind is one of SPRITE_SIZES, colour one of OBJECT_COLORS."""

    x: int
    y: int
    kind: str
    color: str


@dataclass
class Scene:
    """What the raycaster needs to know about the world at one instant.

    cells:       (width, height) int8 solid map of EMPTY / WALL / DOOR_* codes, indexed [x, y]
    door_colors: (width, height, 3) float32 colour of each door cell (ignored elsewhere)
    sprites:     objects lying in the world
    carrying:    the object in the agent's hands, or None
    """

    cells: np.ndarray
    door_colors: np.ndarray
    sprites: list[Sprite]
    agent_pos: tuple[int, int]
    agent_dir: int
    carrying: Sprite | None = None


class Raycaster:
    """Renders :class:`Scene` objects to uint8 RGB frames of shape (height, width, 3)."""

    def __init__(self, height: int = 64, width: int = 64, palette: Palette = Palette()):
        if height < 8 or width < 8:
            raise ValueError(f"frame size must be at least 8x8 pixels, got {height}x{width}")
        self.height, self.width, self.palette = int(height), int(width), palette
        H, W = self.height, self.width
        self.tan_half_fov = float(np.tan(np.radians(palette.fov_degrees) / 2.0))
        self.focal = (W / 2.0) / self.tan_half_fov
        self.camera_x = (2.0 * (np.arange(W) + 0.5) / W - 1.0)  # (W,) in [-1, 1]
        self.rows = np.arange(H, dtype=np.float64) + 0.5  # (H,) pixel-centre rows
        half = H / 2.0
        # Floor casting: perpendicular distance of the floor seen in each row below the horizon.
        below = self.rows > half
        self.floor_rows = np.nonzero(below)[0]
        self.floor_dist = self.focal * 0.5 / (self.rows[below] - half)  # (Hf,)
        # Background: ceiling gradient (brighter far above) and placeholder floor, rebuilt per frame.
        ceil_shade = 0.55 + 0.45 * np.clip((half - self.rows) / half, 0.0, 1.0)  # (H,)
        self.ceiling = (ceil_shade[:, None] * np.asarray(palette.ceiling))[:, None, :]  # (H, 1, 3)
        self.floor_shade = np.exp(-palette.fog * self.floor_dist)  # (Hf,)

    # -------------------------------------------------------------------------------------------------------------
    def render(self, scene: Scene) -> np.ndarray:
        H, W, pal = self.height, self.width, self.palette
        px, py = scene.agent_pos[0] + 0.5, scene.agent_pos[1] + 0.5
        d = _DIR_TO_VEC[scene.agent_dir]  # forward, (2,)
        right = np.array([-d[1], d[0]])  # MiniGrid's right vector
        ray = d[None, :] + right[None, :] * (self.tan_half_fov * self.camera_x[:, None])  # (W, 2)

        img = np.empty((H, W, 3), dtype=np.float32)
        img[:] = self.ceiling
        depth = np.full((H, W), np.inf, dtype=np.float32)

        # Floor casting: world position of the floor under each (row, column) below the horizon.
        fx = px + self.floor_dist[:, None] * ray[None, :, 0]  # (Hf, W)
        fy = py + self.floor_dist[:, None] * ray[None, :, 1]
        checker = ((np.floor(fx) + np.floor(fy)) % 2.0)[..., None]  # (Hf, W, 1)
        floor = np.asarray(pal.floor_a) * (1.0 - checker) + np.asarray(pal.floor_b) * checker
        img[self.floor_rows] = floor * self.floor_shade[:, None, None]

        hit = self._cast(scene.cells, px, py, ray)
        self._draw_walls(img, depth, hit, scene)
        for sprite in self._sorted_sprites(scene.sprites, px, py, d, right):
            self._draw_sprite(img, depth, *sprite)
        self._draw_open_doors(img, depth, hit, scene)
        if scene.carrying is not None:
            self._draw_carried(img, scene.carrying)

        img *= pal.light
        return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    # -------------------------------------------------------------------------------------------------------------
    def _cast(self, cells: np.ndarray, px: float, py: float, ray: np.ndarray) -> dict[str, np.ndarray]:
        """DDA over the grid for all columns at once. Returns per-column hit records."""
        W = ray.shape[0]
        gw, gh = cells.shape
        with np.errstate(divide="ignore"):
            delta = np.abs(1.0 / ray)  # (W, 2), inf where the ray is parallel to an axis
        map_x = np.full(W, int(px))
        map_y = np.full(W, int(py))
        step_x = np.where(ray[:, 0] < 0, -1, 1)
        step_y = np.where(ray[:, 1] < 0, -1, 1)
        side_x = np.where(ray[:, 0] < 0, px - map_x, map_x + 1.0 - px) * delta[:, 0]
        side_y = np.where(ray[:, 1] < 0, py - map_y, map_y + 1.0 - py) * delta[:, 1]

        wall_dist = np.full(W, np.inf)
        wall_side = np.zeros(W, dtype=bool)  # True: the ray crossed a y boundary (a north/south face)
        wall_code = np.full(W, WALL, dtype=np.int8)
        wall_cell = np.zeros((W, 2), dtype=np.int64)
        door_dist = np.full(W, np.inf)  # first open doorway on the way
        door_side = np.zeros(W, dtype=bool)
        door_cell = np.zeros((W, 2), dtype=np.int64)
        active = np.ones(W, dtype=bool)
        for _ in range(gw + gh + 2):
            x_step = side_x < side_y  # (W,)
            dist = np.where(x_step, side_x, side_y)  # distance at which the ray enters the next cell
            map_x = np.where(active & x_step, map_x + step_x, map_x)
            map_y = np.where(active & ~x_step, map_y + step_y, map_y)
            side_x = np.where(active & x_step, side_x + delta[:, 0], side_x)
            side_y = np.where(active & ~x_step, side_y + delta[:, 1], side_y)
            inside = (map_x >= 0) & (map_x < gw) & (map_y >= 0) & (map_y < gh)
            code = np.where(inside, cells[np.clip(map_x, 0, gw - 1), np.clip(map_y, 0, gh - 1)], WALL)
            solid = active & ((code == WALL) | (code == DOOR_CLOSED) | (code == DOOR_LOCKED))
            doorway = active & (code == DOOR_OPEN) & np.isinf(door_dist)
            if doorway.any():
                door_dist = np.where(doorway, dist, door_dist)
                door_side = np.where(doorway, ~x_step, door_side)
                door_cell[doorway] = np.stack([map_x, map_y], 1)[doorway]
            if solid.any():
                wall_dist = np.where(solid, dist, wall_dist)
                wall_side = np.where(solid, ~x_step, wall_side)
                wall_code = np.where(solid, code, wall_code)
                wall_cell[solid] = np.stack([map_x, map_y], 1)[solid]
                active &= ~solid
                if not active.any():
                    break
        wall_dist = np.maximum(wall_dist, 1e-3)
        return {
            "wall_dist": wall_dist, "wall_side": wall_side, "wall_code": wall_code, "wall_cell": wall_cell,
            "wall_u": self._texture_u(wall_dist, wall_side, px, py, ray),
            "door_dist": door_dist, "door_side": door_side, "door_cell": door_cell,
            "door_u": self._texture_u(np.where(np.isinf(door_dist), 0.0, door_dist), door_side, px, py, ray),
        }

    @staticmethod
    def _texture_u(dist: np.ndarray, y_side: np.ndarray, px: float, py: float, ray: np.ndarray) -> np.ndarray:
        """Horizontal texture coordinate in [0, 1) of the hit point along the face it hit."""
        along = np.where(y_side, px + dist * ray[:, 0], py + dist * ray[:, 1])
        return along - np.floor(along)

    def _column_v(self, dist: np.ndarray) -> np.ndarray:
        """(H, W) vertical texture coordinate: 0 at the top of a unit-high wall at `dist`, 1 at its foot."""
        height = self.focal / dist  # (W,) wall height in pixels
        top = self.height / 2.0 - height / 2.0
        return (self.rows[:, None] - top[None, :]) / height[None, :]

    def _draw_walls(self, img: np.ndarray, depth: np.ndarray, hit: dict, scene: Scene) -> None:
        pal = self.palette
        dist, u, code = hit["wall_dist"], hit["wall_u"], hit["wall_code"]
        v = self._column_v(dist)  # (H, W)
        mask = (v >= 0.0) & (v < 1.0)
        is_door = code != WALL
        shade = np.exp(-pal.fog * dist) * np.where(hit["wall_side"], 0.78, 1.0)  # (W,)
        # Wall texture: darker seams at the cell edges and a faint mid-height band.
        seam = (u < 0.04) | (u > 0.96)  # (W,)
        tex = np.where(seam[None, :] | (np.abs(v - 0.55) < 0.02), 0.72, 1.0)  # (H, W)
        base = np.broadcast_to(np.asarray(pal.wall), (dist.shape[0], 3))
        if is_door.any():
            cx, cy = hit["wall_cell"][:, 0], hit["wall_cell"][:, 1]
            base = np.where(is_door[:, None], scene.door_colors[cx, cy], base)  # (W, 3)
            locked = code == DOOR_LOCKED
            base = np.where(locked[:, None], base * 0.7, base)
            # Doors: dark frame and handle (closed), plus a boarded X (locked).
            frame = ((u < 0.08) | (u > 0.92))[None, :] | (v < 0.06)
            handle = (np.abs(u - 0.8) < 0.05)[None, :] & (np.abs(v - 0.55) < 0.05)
            door_tex = np.where(frame | handle, 0.45, 1.0)
            if locked.any():
                boards = (np.abs(u[None, :] - v) < 0.08) | (np.abs(u[None, :] + v - 1.0) < 0.08)
                door_tex = np.where(locked[None, :] & boards, 0.25, door_tex)
            tex = np.where(is_door[None, :], door_tex, tex)
        color = base[None, :, :] * (tex * shade[None, :])[..., None]  # (H, W, 3)
        np.copyto(img, color, where=mask[..., None], casting="unsafe")
        np.copyto(depth, np.broadcast_to(dist[None, :], mask.shape), where=mask, casting="unsafe")

    def _draw_open_doors(self, img: np.ndarray, depth: np.ndarray, hit: dict, scene: Scene) -> None:
        """An open door is an empty doorway: draw its coloured posts and lintel over what lies behind."""
        dist = hit["door_dist"]
        cols = np.isfinite(dist)
        if not cols.any():
            return
        d = np.where(cols, np.maximum(dist, 1e-3), 1.0)
        v = self._column_v(d)
        U = np.broadcast_to(hit["door_u"][None, :], v.shape)
        frame = (v >= 0.0) & (v < 1.0) & ((U < 0.12) | (U > 0.88) | (v < 0.12)) & cols[None, :]
        frame &= d[None, :] < depth
        cx, cy = hit["door_cell"][:, 0], hit["door_cell"][:, 1]
        shade = np.exp(-self.palette.fog * d) * np.where(hit["door_side"], 0.78, 1.0)
        color = scene.door_colors[cx, cy] * shade[:, None]  # (W, 3)
        img[frame] = np.broadcast_to(color[None], img.shape)[frame]
        depth[frame] = np.broadcast_to(d[None, :], frame.shape)[frame]

    # -------------------------------------------------------------------------------------------------------------
    def _sorted_sprites(self, sprites, px, py, d, right):
        """Camera-space (depth, screen x) of the visible sprites, farthest first."""
        out = []
        dx, dy, rx, ry = float(d[0]), float(d[1]), float(right[0]), float(right[1])
        for s in sprites:
            relx, rely = s.x + 0.5 - px, s.y + 0.5 - py
            depth = relx * dx + rely * dy
            if depth < 0.3:
                continue
            lateral = relx * rx + rely * ry
            out.append((depth, self.width / 2.0 + self.focal * lateral / depth, s))
        out.sort(key=lambda t: -t[0])
        return out

    def _draw_sprite(self, img: np.ndarray, depth: np.ndarray, dist: float, screen_x: float, s: Sprite) -> None:
        half_w, h = SPRITE_SIZES[s.kind]
        scale = self.focal / dist
        x0, x1 = screen_x - half_w * scale, screen_x + half_w * scale
        y1 = self.height / 2.0 + 0.5 * scale  # the floor under the sprite
        y0 = y1 - h * scale
        c0, c1 = max(int(np.floor(x0)), 0), min(int(np.ceil(x1)), self.width)
        r0, r1 = max(int(np.floor(y0)), 0), min(int(np.ceil(y1)), self.height)
        if c0 >= c1 or r0 >= r1:
            return
        u = (np.arange(c0, c1) + 0.5 - x0) / (x1 - x0)  # (w,)
        v = (np.arange(r0, r1) + 0.5 - y0) / (y1 - y0)  # (h,)
        mask, tex = _shape(s.kind, u[None, :], v[:, None])
        region = (slice(r0, r1), slice(c0, c1))
        mask = mask & (dist < depth[region])
        shade = np.exp(-self.palette.fog * dist)
        color = np.asarray(OBJECT_COLORS[s.color], dtype=np.float32)[None, None, :] * (tex * shade)[..., None]
        img[region][mask] = color[mask]
        depth[region][mask] = dist

    def _draw_carried(self, img: np.ndarray, s: Sprite) -> None:
        """The carried object, held low in the middle of the view."""
        H, W = self.height, self.width
        x0, x1, y0, y1 = 0.36 * W, 0.64 * W, 0.70 * H, 0.98 * H
        c0, c1, r0, r1 = int(x0), int(np.ceil(x1)), int(y0), int(np.ceil(y1))
        u = (np.arange(c0, c1) + 0.5 - x0) / (x1 - x0)
        v = (np.arange(r0, r1) + 0.5 - y0) / (y1 - y0)
        mask, tex = _shape(s.kind, u[None, :], v[:, None])
        color = np.asarray(OBJECT_COLORS[s.color], dtype=np.float32)[None, None, :] * tex[..., None]
        img[r0:r1, c0:c1][mask] = color[mask]


def _shape(kind: str, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask and brightness of a sprite over its box; u, v in [0, 1] broadcast to (h, w)."""
    u, v = np.broadcast_arrays(u, v)
    if kind == "ball":
        r2 = (u - 0.5) ** 2 + (v - 0.5) ** 2
        highlight = (u - 0.38) ** 2 + (v - 0.35) ** 2
        return r2 < 0.25, (1.05 - 1.6 * highlight).clip(0.45, 1.1)
    if kind == "box":
        inside = (u > 0.02) & (u < 0.98) & (v > 0.02)
        edge = (u < 0.12) | (u > 0.88) | (v < 0.12) | (v > 0.9) | (np.abs(v - 0.32) < 0.05)
        return inside, np.where(edge, 0.55, 1.0)
    if kind == "key":
        ring = (u - 0.24) ** 2 + (v - 0.45) ** 2
        bow = (ring < 0.22**2) & (ring > 0.09**2)
        shaft = (u > 0.40) & (u < 0.97) & (np.abs(v - 0.45) < 0.09)
        teeth = ((np.abs(u - 0.78) < 0.05) | (np.abs(u - 0.92) < 0.05)) & (v > 0.45) & (v < 0.75)
        return bow | shaft | teeth, np.where(shaft | teeth, 0.85, 1.0)
    if kind in ("goal", "lava"):
        return np.ones(u.shape, dtype=bool), np.where(((u * 4).astype(int) + (v * 2).astype(int)) % 2 == 0, 1.0, 0.8)
    raise ValueError(f"unknown sprite kind {kind!r}; expected one of {sorted(SPRITE_SIZES)}")
