"""from_text: a description becomes a first-person frame of a MiniGrid room holding what it names."""

import numpy as np
import pytest

from genie_env import prompts
from genie_env.text_prompt import COLORS, ObjectSpec, TextRoomEnv, from_text, parse_text


def saturated(frame, channel):
    """Pixels clearly of one primary colour (walls, floors and ceilings are never this saturated)."""
    f = frame.astype(int)
    others = np.delete(f, channel, axis=-1).max(axis=-1)
    return int(((f[..., channel] > 2.5 * others) & (f[..., channel] > 40)).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_named_colours_are_in_the_frame(seed):
    frame, mission = from_text("a room with a red door and a blue ball", size=(64, 64), seed=seed)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert mission == "open the red door"
    assert saturated(frame, 0) > 20 and saturated(frame, 2) > 20
    empty, mission = from_text("a room", seed=seed)
    assert mission == "" and saturated(empty, 0) == 0 and saturated(empty, 2) == 0
    green, _ = from_text("a green key", seed=seed)
    assert saturated(green, 1) > 5 and saturated(green, 0) == 0


def test_objects_are_placed_in_the_room():
    env = TextRoomEnv([ObjectSpec("door", "red"), ObjectSpec("ball", "blue"), ObjectSpec("key", "grey"),
                       ObjectSpec("box", "yellow")])
    env.reset(seed=0)
    found = sorted((o.type, o.color) for o in env.grid.grid if o is not None and o.type != "wall")
    assert found == [("ball", "blue"), ("box", "yellow"), ("door", "red"), ("key", "grey")]
    assert env.mission == "open the red door" and env.agent_dir == 3


def test_parsing_counts_plurals_and_missions():
    assert parse_text("Two RED balls, a door and 3 keys.") == (
        [ObjectSpec("ball", "red")] * 2 + [ObjectSpec("door", None)] + [ObjectSpec("key", None)] * 3)
    assert parse_text("a gray box") == [ObjectSpec("box", "grey")]
    assert from_text("a purple key and a door")[1] == "pick up the purple key"
    assert from_text("a yellow box")[1] == "go to the yellow box"
    _, mission = from_text("a ball", seed=3)
    assert mission.startswith("go to the ") and mission.split()[3] in COLORS


def test_unknown_words_list_what_is_understood():
    with pytest.raises(ValueError, match=r"unknown word\(s\) 'dragon'.*Understood: colours \(red, green"):
        from_text("a red dragon")
    with pytest.raises(ValueError, match="not followed by an object"):
        from_text("a door and a blue")
    with pytest.raises(ValueError, match="two colours"):
        from_text("a red blue ball")
    with pytest.raises(ValueError, match="at most"):
        from_text("four balls four keys four boxes")
    with pytest.raises(TypeError, match="str"):
        from_text(3)


def test_seed_and_size():
    a, _ = from_text("a red door", seed=4)
    np.testing.assert_array_equal(a, from_text("a red door", seed=4)[0])
    assert not np.array_equal(a, from_text("a red door", seed=5)[0])  # another palette
    assert from_text("a red door", size=(48, 80))[0].shape == (48, 80, 3)
    with pytest.raises(ValueError, match="size"):
        from_text("a red door", size=(4, 4))


def test_reexported_from_prompts():
    frame, mission = prompts.from_text("a blue ball", size=(32, 32), seed=1)
    np.testing.assert_array_equal(frame, from_text("a blue ball", size=(32, 32), seed=1)[0])
