"""The 3D BabyAI ground-truth world: every registered id, the raycaster's drawing, the seed split."""

import copy

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import genie_env
from genie_env import BABYAI3D_IDS, TEST_SEEDS, TRAIN_SEEDS, MissionObservation
from genie_env.babyai3d import ACTION_MEANINGS, split_of, top_down_window
from genie_env.mission import VOCABULARY, decode_mission, encode_mission
from genie_env.raycaster import (DOOR_CLOSED, DOOR_LOCKED, DOOR_OPEN, WALL, OBJECT_COLORS, Palette, Raycaster,
                                 Scene, Sprite)


def rollout(env_id, seed, actions, **kwargs):
    env = gym.make(env_id, **kwargs)
    frames = [env.reset(seed=seed)[0]]
    for a in actions:
        obs, _, terminated, truncated, _ = env.step(a)
        frames.append(obs)
        if terminated or truncated:
            break
    env.close()
    return np.stack(frames)


@pytest.mark.parametrize("env_id", BABYAI3D_IDS)
def test_gymnasium_check_env(env_id):
    env = gym.make(env_id)
    gym_check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("env_id", BABYAI3D_IDS)
def test_sb3_check_env(env_id):
    sb3_check_env(gym.make(env_id).unwrapped, warn=False)
    sb3_check_env(MissionObservation(gym.make(env_id)), warn=False)


@pytest.mark.parametrize("env_id", BABYAI3D_IDS)
def test_same_seed_same_frames(env_id):
    actions = np.random.default_rng(0).integers(0, 7, size=40)
    a = rollout(env_id, 123, actions)
    b = rollout(env_id, 123, actions)
    c = rollout(env_id, 124, actions)
    assert a.shape[1:] == (64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c), "a different seed should give a different world"


@pytest.mark.parametrize("env_id", BABYAI3D_IDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_bot_solves_level(env_id, seed):
    env = gym.make(env_id)
    env.reset(seed=seed)
    bot = env.unwrapped.make_bot()
    action, total = None, 0.0
    for _ in range(500):
        action = bot.act(action)
        _, reward, terminated, truncated, info = env.step(action)
        total += reward
        if terminated or truncated:
            break
    assert terminated and info["success"] and total > 0, f"bot failed on {env_id} seed {seed}"


@pytest.mark.parametrize("env_id", BABYAI3D_IDS)
def test_copy_roundtrip(env_id):
    """Envs must copy (and so pickle, which uses the same protocol) for subprocess vector envs."""
    env = gym.make(env_id)
    env.reset(seed=5)
    clone = copy.deepcopy(env)
    np.testing.assert_array_equal(env.step(3)[0], clone.step(3)[0])


def test_seed_split_and_level_seed_option():
    env = gym.make("genie_env/BabyAI3D-GoToLocal-v0")
    _, info = env.reset(seed=3)
    assert info["level_seed"] in TRAIN_SEEDS and info["split"] == "train"
    test_env = gym.make("genie_env/BabyAI3D-GoToLocal-v0", worlds="test")
    seeds = {test_env.reset(seed=s)[1]["level_seed"] for s in range(20)}
    assert all(s in TEST_SEEDS for s in seeds) and len(seeds) > 15
    assert not set(range(TRAIN_SEEDS.start, TRAIN_SEEDS.stop)) & set(range(TEST_SEEDS.start, TEST_SEEDS.stop))
    frame_a, info = env.reset(options={"level_seed": 1_000_007})
    frame_b, _ = test_env.reset(seed=99, options={"level_seed": 1_000_007})
    assert info["split"] == "test" == split_of(1_000_007)
    np.testing.assert_array_equal(frame_a, frame_b)
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"prompt": 1})


def test_bad_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="unknown level"):
        genie_env.BabyAI3DEnv(level="Nope")
    with pytest.raises(ValueError, match="view"):
        genie_env.BabyAI3DEnv(view="isometric")
    with pytest.raises(ValueError, match="size"):
        genie_env.BabyAI3DEnv(size=(4, 64))
    env = genie_env.BabyAI3DEnv()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for bad in (7, -1, "forward", 2.5):
        with pytest.raises(ValueError, match="invalid action"):
            env.step(bad)


def test_actions_vocabulary_and_keys():
    env = genie_env.BabyAI3DEnv()
    assert env.get_action_meanings() == list(ACTION_MEANINGS)
    keys = env.get_keys_to_action()
    assert keys[(ord("w"),)] == ACTION_MEANINGS.index("forward")
    assert keys[(ord("e"),)] == ACTION_MEANINGS.index("toggle")
    assert set(keys.values()) <= set(range(7))


def test_noop_keeps_the_world_still_and_turns_move_the_view():
    env = genie_env.BabyAI3DEnv()
    frame, _ = env.reset(seed=11)
    np.testing.assert_array_equal(env.step(0)[0], frame)
    turned = env.step(1)[0]
    assert np.abs(turned.astype(int) - frame).mean() > 5
    env.step(1), env.step(1)
    np.testing.assert_array_equal(env.step(1)[0], frame)  # four left turns: back where we started


@pytest.mark.parametrize("size", [(48, 80), (96, 96)])
def test_any_frame_size(size):
    env = genie_env.BabyAI3DEnv(size=size)
    frame, _ = env.reset(seed=0)
    assert frame.shape == (*size, 3) and env.observation_space.contains(frame)


def test_top_down_view():
    env = genie_env.BabyAI3DEnv(view="top_down", size=(64, 64))
    frame, _ = env.reset(seed=0)
    first_person, _ = genie_env.BabyAI3DEnv().reset(seed=0)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    assert not np.array_equal(frame, first_person)
    assert env.step(3)[0].shape == (64, 64, 3)


def test_top_down_window():
    """top_down_cells shows the cells around the agent, larger (more pixels per cell), and scrolls with it."""
    whole = genie_env.BabyAI3DEnv(level="OpenDoor", view="top_down", worlds="test")  # a 22 x 22 grid
    window = genie_env.BabyAI3DEnv(level="OpenDoor", view="top_down", worlds="test", top_down_cells=7)
    a, _ = whole.reset(options={"level_seed": TEST_SEEDS.start})
    b, _ = window.reset(options={"level_seed": TEST_SEEDS.start})
    assert b.shape == a.shape and not np.array_equal(a, b)
    grid, (ax, ay) = top_down_window(window.minigrid, 7)
    assert (grid.width, grid.height) == (7, 7) and 0 <= ax < 7 and 0 <= ay < 7
    inner = window.minigrid
    x0, y0 = int(inner.agent_pos[0]) - ax, int(inner.agent_pos[1]) - ay  # the window's corner in the grid
    assert 0 <= x0 <= inner.grid.width - 7 and 0 <= y0 <= inner.grid.height - 7
    assert all(grid.get(i, j) is inner.grid.get(x0 + i, y0 + j) for i in range(7) for j in range(7))
    # a window as large as the grid is the whole grid
    small = genie_env.BabyAI3DEnv(level="GoToLocal", view="top_down", top_down_cells=8)
    assert np.array_equal(small.reset(seed=3)[0], genie_env.BabyAI3DEnv(level="GoToLocal", view="top_down").reset(seed=3)[0])
    for bad in (2, 0, True, 5.5):
        with pytest.raises(ValueError, match="top_down_cells must be an int >= 3"):
            genie_env.BabyAI3DEnv(view="top_down", top_down_cells=bad)
    with pytest.raises(ValueError, match="applies to view='top_down' only"):
        genie_env.BabyAI3DEnv(top_down_cells=9)


def test_worlds_look_different_across_seeds():
    a, b = Palette.from_seed(1), Palette.from_seed(2)
    assert a != b and a == Palette.from_seed(1)
    assert 58 <= a.fov_degrees <= 74 and 0.75 <= a.light <= 1.15


def test_mission_encoding():
    ids = encode_mission("Pick up the red ball on your LEFT, then go to a zebra")
    assert ids.shape == (24,) and ids.dtype == np.int64
    assert decode_mission(ids) == "pick up the red ball on your left then go to a <unk>"
    env = MissionObservation(gym.make("genie_env/BabyAI3D-OpenRedDoor-v0"))
    obs, info = env.reset(seed=0)
    assert decode_mission(obs["mission"]) == info["mission"] == "open the red door"
    assert env.observation_space.contains(obs)
    assert all(w.isalpha() or w.startswith("<") for w in VOCABULARY)


# --- the raycaster's drawing --------------------------------------------------------------------------------------

def corridor(door_code=None, sprites=(), carrying=None):
    """A 3-wide corridor looking +x from (1, 1): walls around, optionally a door at x=4 and sprites."""
    cells = np.zeros((7, 3), dtype=np.int8)
    cells[0, :] = cells[-1, :] = cells[:, 0] = cells[:, -1] = WALL
    door_colors = np.zeros((7, 3, 3), dtype=np.float32)
    if door_code is not None:
        cells[4, 1] = door_code
        door_colors[4, 1] = OBJECT_COLORS["red"]
    return Scene(cells, door_colors, list(sprites), (1, 1), 0, carrying)


def test_door_states_look_different():
    caster = Raycaster(64, 64, Palette())
    closed, locked, opened, none = (caster.render(corridor(c)) for c in (DOOR_CLOSED, DOOR_LOCKED, DOOR_OPEN, None))
    centre = (slice(24, 40), slice(24, 40))
    red = lambda img: (img[..., 0].astype(int) - img[..., 1]).clip(0).mean()  # noqa: E731
    assert red(closed[centre]) > 60 and red(locked[centre]) > 10
    assert np.abs(closed[centre].astype(int) - locked[centre]).mean() > 20
    red_pixels = (opened[..., 0].astype(int) - opened[..., 1] > 80).sum()
    assert red(opened[28:36, 28:36]) < 10 and red_pixels > 40  # an open doorway: see through it, red frame around
    assert np.abs(opened.astype(int) - none).mean() > 1  # but the frame is there


def test_sprites_are_drawn_and_occluded_by_walls():
    caster = Raycaster(64, 64, Palette())
    empty = caster.render(corridor())
    ball = caster.render(corridor(sprites=[Sprite(3, 1, "ball", "blue")]))
    assert np.abs(ball.astype(int) - empty).sum() > 0
    changed = np.abs(ball.astype(int) - empty).sum(axis=2) > 0
    cols = np.nonzero(changed.any(axis=0))[0]
    assert 24 <= cols.min() and cols.max() < 40  # in the middle, where it stands
    assert (ball[changed][:, 2] > ball[changed][:, 0] + 50).mean() > 0.9  # and blue
    hidden = caster.render(corridor(door_code=DOOR_CLOSED, sprites=[Sprite(5, 1, "ball", "blue")]))
    np.testing.assert_array_equal(hidden, caster.render(corridor(door_code=DOOR_CLOSED)))


def test_carried_object_is_drawn_low_in_view():
    caster = Raycaster(64, 64, Palette())
    empty = caster.render(corridor())
    holding = caster.render(corridor(carrying=Sprite(-1, -1, "key", "yellow")))
    changed = np.abs(holding.astype(int) - empty).sum(axis=2) > 0
    rows = np.nonzero(changed.any(axis=1))[0]
    assert rows.size and rows.min() >= 40


def test_bot_survives_an_opened_box():
    """Epsilon noise can open a box the bot planned around; the bot must not crash the recording."""
    env = genie_env.BabyAI3DEnv(level="PickupLoc")
    for seed in range(40):
        env.reset(seed=seed)
        bot, action = env.make_bot(), None
        rng = np.random.default_rng(seed)
        for _ in range(150):
            action = bot.act(action)
            if rng.random() < 0.3:
                action = 6  # toggle a lot: opens boxes in front of the agent
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
