"""Text prompts: "a room with a red door and a blue ball" -> a first-person prompt frame and a mission.

Genie 2 is prompted with images made by a text-to-image model. We have no such model, so ``from_text`` builds
the scene the words describe in the ground-truth world and renders it: a 5 x 5 MiniGrid room (a ``MiniGridEnv``
subclass, :class:`TextRoomEnv`) with the named doors in its walls and the named keys, balls and boxes on its floor,
the agent standing at the bottom facing them, drawn by the project's raycaster. The frame is an ordinary prompt
image for GenieWorld (``reset(options={"prompt_text": ...})`` calls this).

Understood words: colours (red, green, blue, purple, yellow, grey / gray), objects (door, key, ball, box, and
their plurals), counts (a, an, one .. four, 1 .. 4) and filler words (the, with, and, room, ...). A colour applies
to the next object; objects without a colour get one drawn from ``seed``, which also draws the room's palette.
Any other word raises a ValueError that lists what is understood.

Layout (MiniGrid coordinates, x right, y down; the agent at (3, 5) looks up, towards y = 0): doors fill the far
wall first (x = 3, 1, 5, 2, 4) and then the side walls (out of view); objects fill the cells in view, nearest
first, the centre last (it hides the far door): (2, 2), (4, 2), (1, 1), (5, 1), (2, 1), (4, 1), (3, 3), (3, 1).

The mission follows BabyAI's grammar for the first object named: "open the red door", "pick up the green key",
"go to the blue ball" / "go to the grey box" (an empty room has the mission "").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Ball, Box, Door, Key
from minigrid.minigrid_env import MiniGridEnv

from genie_env.babyai3d import scene_of
from genie_env.raycaster import OBJECT_COLORS, Palette, Raycaster

COLORS = ("red", "green", "blue", "purple", "yellow", "grey")
_COLOR_WORDS = {**{c: c for c in COLORS}, "gray": "grey"}
_KIND_WORDS = {"door": "door", "doors": "door", "key": "key", "keys": "key", "ball": "ball", "balls": "ball",
               "box": "box", "boxes": "box"}
_COUNT_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "1": 1, "2": 2, "3": 3, "4": 4}
#: Words that carry no meaning for the layout and are skipped.
STOP_WORDS = frozenset({
    "the", "with", "and", "room", "rooms", "in", "of", "there", "is", "are", "some", "has", "have", "containing",
    "contains", "on", "at", "its", "it", "wall", "walls", "floor", "near", "by", "plus", "also", "small", "big",
    "this", "that", "view", "first", "person", "scene", "world", "inside", "to",
})

_SIZE = 7  # the room: walls around a 5 x 5 floor
_AGENT = (3, 5)
_AGENT_DIR = 3  # looking towards -y
_DOOR_CELLS = ((3, 0), (1, 0), (5, 0), (2, 0), (4, 0), (0, 1), (6, 1), (0, 2), (6, 2))
_OBJECT_CELLS = ((2, 2), (4, 2), (1, 1), (5, 1), (2, 1), (4, 1), (3, 3), (3, 1))


@dataclass(frozen=True)
class ObjectSpec:
    """One object a text prompt names: kind in door / key / ball / box, colour one of COLORS or None (any)."""

    kind: str
    color: str | None = None


def understood_words() -> str:
    """A one-line summary of the vocabulary, for error messages."""
    return (f"colours ({', '.join(COLORS)}), objects (door, key, ball, box, and plurals), counts (a, an, one-four, "
            f"1-4) and filler words ({', '.join(sorted(STOP_WORDS))})")


def parse_text(text: str) -> list[ObjectSpec]:
    """The objects a prompt names, in order: "two red balls and a door" -> [ball/red, ball/red, door/None]."""
    if not isinstance(text, str):
        raise TypeError(f"a text prompt must be a str, got {type(text).__name__}")
    words = re.findall(r"[a-z0-9]+", text.lower())
    unknown = [w for w in words if w not in _COLOR_WORDS and w not in _KIND_WORDS and w not in _COUNT_WORDS
               and w not in STOP_WORDS]
    if unknown:
        raise ValueError(f"text prompt {text!r}: unknown word(s) {', '.join(repr(w) for w in dict.fromkeys(unknown))}"
                         f". Understood: {understood_words()}")
    objects: list[ObjectSpec] = []
    count, color = None, None
    for w in words:
        if w in _COUNT_WORDS:
            if color is not None:
                raise ValueError(f"text prompt {text!r}: a count ({w!r}) after the colour {color!r}; write "
                                 f"'{w} {color} ball', not '{color} {w} ball'")
            count = _COUNT_WORDS[w]
        elif w in _COLOR_WORDS:
            if color is not None:
                raise ValueError(f"text prompt {text!r}: two colours ({color!r}, {_COLOR_WORDS[w]!r}) for one "
                                 "object; give each object one colour")
            color = _COLOR_WORDS[w]
        elif w in _KIND_WORDS:
            objects += [ObjectSpec(_KIND_WORDS[w], color)] * (count or 1)
            count, color = None, None
    if color is not None:
        raise ValueError(f"text prompt {text!r}: the colour {color!r} is not followed by an object; name one of "
                         "door, key, ball, box after it")
    doors = sum(o.kind == "door" for o in objects)
    if doors > len(_DOOR_CELLS) or len(objects) - doors > len(_OBJECT_CELLS):
        raise ValueError(f"text prompt {text!r} names {doors} doors and {len(objects) - doors} other objects; the "
                         f"room holds at most {len(_DOOR_CELLS)} doors and {len(_OBJECT_CELLS)} keys/balls/boxes")
    return objects


def mission_for(objects: list[ObjectSpec]) -> str:
    """BabyAI's mission for the first object (colours must be resolved): "open the red door", ..."""
    if not objects:
        return ""
    first = objects[0]
    if first.kind == "door":
        return f"open the {first.color} door"
    if first.kind == "key":
        return f"pick up the {first.color} key"
    return f"go to the {first.color} {first.kind}"


class TextRoomEnv(MiniGridEnv):
    """A MiniGrid room holding exactly the given objects (colours resolved), laid out as the module describes."""

    def __init__(self, objects: list[ObjectSpec], **kwargs):
        if any(o.color not in COLORS for o in objects):
            raise ValueError("TextRoomEnv needs every object's colour resolved; use from_text")
        self.objects = list(objects)
        mission = mission_for(self.objects)
        super().__init__(mission_space=MissionSpace(mission_func=lambda: mission), grid_size=_SIZE, max_steps=100,
                         see_through_walls=True, **kwargs)
        self._mission_text = mission

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        doors = [o for o in self.objects if o.kind == "door"]
        others = [o for o in self.objects if o.kind != "door"]
        for obj, (x, y) in zip(doors, _DOOR_CELLS):
            self.grid.set(x, y, Door(obj.color))
        make = {"key": Key, "ball": Ball, "box": Box}
        for obj, (x, y) in zip(others, _OBJECT_CELLS):
            self.grid.set(x, y, make[obj.kind](obj.color))
        self.agent_pos = _AGENT
        self.agent_dir = _AGENT_DIR
        self.mission = self._mission_text


def from_text(text: str, size: tuple[int, int] = (64, 64), seed: int = 0) -> tuple[np.ndarray, str]:
    """A first-person prompt frame uint8 (H, W, 3) with (H, W) = size, and its mission, from a description.

    >>> frame, mission = from_text("a room with a red door and a blue ball", seed=0)
    >>> mission
    'open the red door'
    """
    height, width = (int(s) for s in size)
    if height < 8 or width < 8:
        raise ValueError(f"size must be (height, width) with both >= 8, got {tuple(size)}")
    rng = np.random.default_rng([int(seed) % (2**63), 0x7E47])
    objects = [o if o.color is not None else ObjectSpec(o.kind, COLORS[int(rng.integers(len(COLORS)))])
               for o in parse_text(text)]
    env = TextRoomEnv(objects)
    env.reset(seed=int(seed) % (2**31))
    frame = Raycaster(height, width, Palette.from_seed(int(seed))).render(scene_of(env))
    mission = str(env.mission)
    env.close()
    return frame, mission
