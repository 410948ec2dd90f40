"""GenieWorldEnv with a tiny random-weights world model: env checks, prompts, seeding, fork, rewards, memory."""

import dataclasses
import os

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from PIL import Image
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import genie_env
from genie_env import GENIE_WORLD_ID, TEST_SEEDS, BabyAI3DEnv
from genie_env.genie_world import GenieWorldEnv, load_world_model
from genie_env.mission import encode_mission
from genie_env.prompts import load_prompt_image
from world_model.checkpoint import CheckpointError
from world_model.inference import DEFAULT_CHECKPOINT
from genie_env.judge import DEFAULT_JUDGE_CHECKPOINT, PRESETS as JUDGE_PRESETS, SuccessJudge


@pytest.fixture(scope="module")
def wm(tiny_world_model):
    return tiny_world_model()


def make(wm, **kwargs):
    return gym.make(GENIE_WORLD_ID, model=wm, **kwargs)


def rollout(env, seed, actions, options=None):
    frames = [env.reset(seed=seed, options=options)[0]]
    frames += [env.step(a)[0] for a in actions]
    return np.stack(frames)


# ---------------------------------------------------------------------------------------------- registration


def test_registration():
    spec = gym.spec(GENIE_WORLD_ID)
    assert spec.max_episode_steps == 200
    assert spec.entry_point == "genie_env.genie_world:GenieWorldEnv"
    assert spec.vector_entry_point == "genie_env.genie_world_vector:GenieWorldVectorEnv"
    assert genie_env.GenieWorldEnv is GenieWorldEnv


def test_one_config_for_both_envs(wm):
    from genie_env.genie_world import GenieWorldConfig
    from genie_env.genie_world_vector import GenieWorldVectorEnv

    config = GenieWorldConfig(model=wm, level="GoToRedBall", num_steps=1, mission_observation=True)
    env = GenieWorldEnv(config)
    venv = GenieWorldVectorEnv(2, config, max_episode_steps=5)
    assert env.config == venv.config == config
    assert genie_env.GenieWorldConfig is GenieWorldConfig
    assert venv.single_observation_space == env.observation_space
    assert GenieWorldEnv(config, level="OpenRedDoor").config == GenieWorldConfig(
        model=wm, level="OpenRedDoor", num_steps=1, mission_observation=True)  # keywords replace fields
    assert make(wm, level="OpenRedDoor").unwrapped.config.level == "OpenRedDoor"  # gym.make kwargs
    assert gym.make_vec(GENIE_WORLD_ID, num_envs=2, config=config).config == config
    with pytest.raises(TypeError, match="unknown GenieWorld arguments \\['modle'\\]"):
        GenieWorldEnv(modle="default")
    with pytest.raises(TypeError, match="pass the other arguments by keyword"):
        GenieWorldEnv("default")
    with pytest.raises(ValueError, match="num_threads"):
        GenieWorldConfig(num_threads=0)
    with pytest.raises(ValueError, match="unknown level"):
        GenieWorldConfig(level="Nowhere")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.level = "OpenRedDoor"


def test_time_limit_truncates(wm):
    env = make(wm, max_episode_steps=3)
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(3)] == [False, False, True]


# ---------------------------------------------------------------------------------------------- checkers


@pytest.mark.parametrize("mission_observation", [False, True])
def test_gymnasium_check_env(wm, mission_observation):
    env = make(wm, mission_observation=mission_observation)
    gym_check_env(env.unwrapped, skip_render_check=True)  # includes the same-seed determinism checks


def test_sb3_check_env(wm):
    sb3_check_env(make(wm).unwrapped, warn=False)
    sb3_check_env(make(wm, mission_observation=True).unwrapped, warn=False)


def test_spaces_render_and_keys(wm):
    env = make(wm, render_mode="rgb_array").unwrapped
    assert env.observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    assert env.action_space == gym.spaces.Discrete(7)
    assert env.get_action_meanings() == ["noop", "turn_left", "turn_right", "forward", "pickup", "drop", "toggle"]
    keys = env.get_keys_to_action()
    assert keys[(ord("w"),)] == 3 and keys[(ord("e"),)] == 6
    assert env.metadata["render_fps"] > 0
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), obs)
    obs, *_ = env.step(3)
    np.testing.assert_array_equal(env.render(), obs)


def test_step_before_reset_and_bad_action(wm):
    env = make(wm).unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action"):
        env.step(7)
    for flag in (True, np.bool_(False), np.array(True)):
        with pytest.raises(ValueError, match="a bool is not an action"):
            env.step(flag)
    env.step(np.int64(3))


# ---------------------------------------------------------------------------------------------- prompts


def test_default_prompt_is_an_unseen_ground_truth_world(wm):
    env = make(wm, level="GoToRedBall")
    obs, info = env.reset(seed=5)
    assert info["level_seed"] in TEST_SEEDS and info["prompt"] == "babyai3d"
    truth = BabyAI3DEnv(level="GoToRedBall", worlds="test")
    frame, truth_info = truth.reset(options={"level_seed": info["level_seed"]})
    np.testing.assert_array_equal(obs, frame)
    assert info["mission"] == truth_info["mission"] and "red ball" in info["mission"]


def test_prompt_image_of_any_kind(wm, tmp_path):
    env = make(wm)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (30, 30, 4), dtype=np.uint8)
    grey = rng.integers(0, 256, (100, 70), dtype=np.uint8)
    path = tmp_path / "prompt.png"
    Image.fromarray(rgba).save(path)
    pil = Image.fromarray(rgb).convert("P")
    for image in (rgb, rgba, grey, str(path), path, pil, rgb.astype(np.float32) / 255.0):
        obs, info = env.reset(seed=0, options={"prompt_image": image})
        assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
        np.testing.assert_array_equal(obs, load_prompt_image(image, (64, 64)))
        assert info["prompt"] == "image" and info["level_seed"] == -1 and info["mission"] == ""
        env.step(3)
    _, info = env.reset(seed=0, options={"prompt_image": rgb, "mission": "open the red door"})
    assert info["mission"] == "open the red door"


def test_prompt_errors_say_what_to_do(wm, tmp_path):
    env = make(wm)
    with pytest.raises(TypeError, match="file path, a numpy array or a PIL image"):
        env.reset(options={"prompt_image": 42})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        env.reset(options={"prompt_image": str(tmp_path / "missing.png")})
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="not an image file"):
        env.reset(options={"prompt_image": tmp_path / "notes.png"})
    with pytest.raises(ValueError, match="channels last"):
        env.reset(options={"prompt_image": np.zeros((3, 32, 32), np.uint8)})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"prompt": "x.png"})
    with pytest.raises(ValueError, match="only one"):
        env.reset(options={"prompt_image": np.zeros((8, 8, 3), np.uint8), "prompt_text": "a red door"})
    with pytest.raises(TypeError, match="mission"):
        env.reset(options={"mission": 3})


def test_failed_reset_changes_nothing(wm, tmp_path):
    env = make(wm)  # as a user makes it, wrappers and all
    with pytest.raises(FileNotFoundError, match="does not exist"):
        env.reset(seed=0, options={"prompt_image": str(tmp_path / "typo.png")})
    env.reset(seed=0)  # the retry after the typo
    obs, reward, *_ = env.step(3)
    assert obs.shape == (64, 64, 3) and reward == 0.0
    frame, state = env.unwrapped.frame, env.unwrapped.np_random.bit_generator.state
    for options in ({"prompt_image": str(tmp_path / "typo.png")}, {"level_seed": -1}, {"mission": 3},
                    {"prompt_text": 5}):
        with pytest.raises((FileNotFoundError, TypeError, ValueError)):
            env.reset(seed=1, options=options)
    np.testing.assert_array_equal(env.unwrapped.frame, frame)
    assert env.unwrapped.np_random.bit_generator.state == state  # not reseeded by the failed resets
    np.testing.assert_array_equal(env.step(3)[0], rollout(make(wm), 0, [3, 3])[-1])


def test_prompt_text(wm):
    obs, info = make(wm).reset(seed=0, options={"prompt_text": "a room with a red door and a blue ball"})
    assert info["mission"] == "open the red door" and info["prompt"] == "text"
    f = obs.astype(int)
    red = (f[..., 0] > 2.5 * np.maximum(f[..., 1], f[..., 2])) & (f[..., 0] > 40)
    assert red.sum() > 20


# ---------------------------------------------------------------------------------------------- seeding, fork


def test_same_seed_same_frames(wm):
    actions = [3, 1, 3, 2, 6, 0, 3, 4]
    a = rollout(make(wm), 7, actions)
    b = rollout(make(wm), 7, actions)
    c = rollout(make(wm), 8, actions)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    image = np.full((64, 64, 3), 128, np.uint8)
    d = rollout(make(wm), 1, actions, {"prompt_image": image})
    e = rollout(make(wm), 2, actions, {"prompt_image": image})
    assert not np.array_equal(d[1:], e[1:]), "the sampling noise must come from the reset seed"


def test_fork_gives_independent_counterfactuals(wm):
    before, after_a, after_b = [3, 1], [2, 2, 3], [1, 1, 6]
    env = make(wm).unwrapped
    reference = rollout(make(wm).unwrapped, 11, before + after_a)

    env.reset(seed=11)
    for a in before:
        env.step(a)
    fork = env.fork()
    twin = env.fork()
    assert fork.mission == env.mission and fork.world_state is not env.world_state
    np.testing.assert_array_equal(fork.render(), env.render())
    branch_b = np.stack([fork.step(a)[0] for a in after_b])
    branch_a = np.stack([env.step(a)[0] for a in after_a])
    twin_a = np.stack([twin.step(a)[0] for a in after_a])
    np.testing.assert_array_equal(branch_a, reference[len(before) + 1:])  # the original is untouched by the fork
    np.testing.assert_array_equal(twin_a, branch_a)  # same actions, same copied noise: the same future
    assert not np.array_equal(branch_a, branch_b)  # other actions: another future
    reseeded = env.fork(seed=123)
    assert reseeded.step(0)[0].shape == (64, 64, 3)
    with pytest.raises(RuntimeError, match="reset"):
        make(wm).unwrapped.fork()


# ---------------------------------------------------------------------------------------------- rewards


def test_reward_fn(wm):
    calls = []

    def reward_fn(frames, action, mission):
        calls.append((frames.shape, action, mission))
        return 0.5, len(calls) >= 5

    env = make(wm, reward_fn=reward_fn)
    env.reset(seed=0, options={"mission": "turn around"})
    results = [env.step(1)[1:3] for _ in range(5)]
    assert results[:4] == [(0.5, False)] * 4 and results[4] == (0.5, True)
    assert [c[0] for c in calls] == [(2, 64, 64, 3), (3, 64, 64, 3), (4, 64, 64, 3), (4, 64, 64, 3), (4, 64, 64, 3)]
    assert all(c[1] == 1 and c[2] == "turn around" for c in calls)

    env = make(wm, reward_fn=lambda frames, action, mission: 1.0)
    env.reset(seed=0)
    with pytest.raises(TypeError, match=r"\(reward, terminated\)"):
        env.step(0)
    with pytest.raises(TypeError, match="callable"):
        make(wm, reward_fn=3)


def test_judge_rewards(wm):
    torch.manual_seed(0)
    judge = SuccessJudge(JUDGE_PRESETS["tiny"])
    env = make(wm, judge=judge, judge_threshold=0.01)  # a random judge is unsure: p ~ 0.5
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(3)
    assert 0.0 <= info["success_probability"] <= 1.0
    assert (reward, terminated, info["success"]) == (1.0, True, True)
    env = make(wm, judge=judge, judge_threshold=0.99)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(3)
    assert (reward, terminated, info["success"]) == (0.0, False, False)
    assert make(wm).reset(seed=0)[1].keys() == {"mission", "level_seed", "prompt", "view", "step"}


def test_judge_from_folder(wm, tmp_path):
    SuccessJudge(JUDGE_PRESETS["tiny"]).save(tmp_path / "judge")
    env = make(wm, judge=tmp_path / "judge")
    env.reset(seed=0)
    assert "success_probability" in env.step(0)[4]
    with pytest.raises(TypeError, match="judge must be"):
        make(wm, judge=3)


@pytest.mark.skipif((DEFAULT_JUDGE_CHECKPOINT / "config.json").exists(), reason="the default judge is installed")
def test_default_judge_missing_says_how_to_train_it(wm):
    with pytest.raises(CheckpointError, match="genie-train judge"):
        make(wm, judge="default")


# ---------------------------------------------------------------------------------------------- models


@pytest.mark.filterwarnings("ignore:Heun with")  # a 2-step Heun world: the settings pass through
def test_model_from_checkpoint_folder_is_shared(tmp_path, tiny_world_model):
    tiny_world_model(1).save(tmp_path / "ckpt")
    a = gym.make(GENIE_WORLD_ID, model=str(tmp_path / "ckpt"), num_steps=2, guidance=1.0, sampler="heun")
    b = gym.make(GENIE_WORLD_ID, model=tmp_path / "ckpt")
    assert a.unwrapped.wm is b.unwrapped.wm  # one copy of the weights
    a.reset(seed=0)
    assert a.step(3)[0].shape == (64, 64, 3)
    with pytest.raises(ValueError, match="num_steps"):
        gym.make(GENIE_WORLD_ID, model=a.unwrapped.wm, num_steps=0)
    with pytest.raises(ValueError, match="sampler"):
        gym.make(GENIE_WORLD_ID, model=a.unwrapped.wm, sampler="ddim")
    with pytest.raises(TypeError, match="model must be"):
        load_world_model(3)
    with pytest.raises(ValueError, match="unknown level"):
        gym.make(GENIE_WORLD_ID, model=a.unwrapped.wm, level="Nope")


@pytest.mark.skipif((DEFAULT_CHECKPOINT / "config.json").exists(), reason="the default checkpoint is installed")
def test_default_model_missing_says_how_to_get_it():
    with pytest.raises(CheckpointError, match="genie-train"):
        gym.make(GENIE_WORLD_ID)


@pytest.mark.skipif(not (DEFAULT_CHECKPOINT / "config.json").exists(), reason="no default checkpoint yet")
def test_default_model_plays():
    env = gym.make(GENIE_WORLD_ID)
    obs, info = env.reset(seed=0)
    assert env.step(3)[0].shape == obs.shape


def test_mission_observation(wm):
    env = make(wm, mission_observation=True)
    obs, info = env.reset(seed=0, options={"mission": "open the red door"})
    assert obs["image"].shape == (64, 64, 3)
    np.testing.assert_array_equal(obs["mission"], encode_mission("open the red door"))
    assert env.observation_space.contains(env.step(0)[0])


# ---------------------------------------------------------------------------------------------- memory


def _bounded_rollout(wm, steps):
    env = make(wm, max_episode_steps=steps + 1).unwrapped
    env.reset(seed=0)
    for _ in range(5):
        env.step(3)
    size, k = env.state_bytes(), env.world_state.cache.k[0].data_ptr()
    rng = np.random.default_rng(0)
    for a in rng.integers(0, 7, steps):
        env.step(int(a))
    assert env.state_bytes() == size
    assert env.world_state.cache.k[0].data_ptr() == k  # written in place: a ring buffer, not a growing list
    assert int(env.world_state.cache.num_frames.max()) <= wm.config.dynamics.context_frames
    assert int(env.world_state.time[0]) == steps + 6
    return env


def test_memory_bounded(wm):
    _bounded_rollout(wm, 300)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_memory_bounded_10000_steps(wm):
    _bounded_rollout(wm, 500)  # warm up allocator caches
    before = _rss_bytes()
    _bounded_rollout(wm, 10_000)
    assert _rss_bytes() - before < 64 * 2**20


def test_human_render_mode(wm, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    env = make(wm, render_mode="human")
    env.reset(seed=0)
    env.step(3)
    assert env.render() is None
    env.close()


def test_look_around_prompt(wm):
    """look_around=True: a 3D BabyAI prompt world starts after the model has been shown its four turns in place
    (5 frames in the model's context, the first observation the same frame); an image prompt has none to show."""
    from genie_env.genie_world import LOOK_AROUND, GenieWorldConfig

    env, plain = make(wm, look_around=True), make(wm)
    obs, info = env.reset(seed=5)
    obs_plain, info_plain = plain.reset(seed=5)
    assert info["level_seed"] == info_plain["level_seed"]
    np.testing.assert_array_equal(obs, obs_plain)  # a full turn ends on the start view
    worlds = env.unwrapped._worlds
    assert worlds.state.time.tolist() == [1 + len(LOOK_AROUND)] and worlds.steps.tolist() == [0]
    frames = [env.step(a)[0] for a in (3, 1, 0)]
    assert all(f.shape == obs.shape for f in frames)
    other = env.unwrapped.fork()
    other.reset(seed=6)
    assert other._worlds.state.time.tolist() == [1 + len(LOOK_AROUND)]
    env.reset(seed=5, options={"prompt_image": np.full((64, 64, 3), 90, np.uint8)})
    assert worlds.state.time.tolist() == [1]
    vec = gym.make_vec(GENIE_WORLD_ID, num_envs=2, model=wm, look_around=True)
    vec.reset(seed=3)
    vec.step(np.array([1, 3]))
    assert vec.unwrapped._worlds.state.time.tolist() == [2 + len(LOOK_AROUND)] * 2
    vec.close()
    with pytest.raises(TypeError, match="look_around must be True or False"):
        GenieWorldConfig(look_around="yes")


def test_top_down_view(tiny_world_model):
    """view="top_down": the prompts are the test worlds' overhead frames, and a view-conditioned model is told the
    view of every world (the reset option replaces the argument for one reset; an image's view is unknown unless
    given; a text prompt is first person only, and asking otherwise fails before anything changes)."""
    from genie_env.genie_world import GenieWorldConfig
    from world_model import WorldModel
    from world_model.dynamics import VIEW_IDS

    base = tiny_world_model()
    config = dataclasses.replace(base.config, dynamics=dataclasses.replace(base.config.dynamics, views=len(VIEW_IDS)))
    wm = WorldModel.from_config(config)
    wm.load_state_dict(base.state_dict(), strict=False)  # the view embedding stays as initialised
    env = make(wm, level="GoToRedBall", view="top_down")
    obs, info = env.reset(seed=5)
    truth = BabyAI3DEnv(level="GoToRedBall", view="top_down", worlds="test")
    frame, truth_info = truth.reset(options={"level_seed": info["level_seed"]})
    np.testing.assert_array_equal(obs, frame)
    assert info["view"] == "top_down" and info["mission"] == truth_info["mission"]
    views = lambda e: e.unwrapped._worlds.state.cache.views.tolist()  # noqa: E731
    assert views(env) == [VIEW_IDS["top_down"]]
    assert env.step(1)[0].shape == (64, 64, 3)
    obs, info = env.reset(seed=5, options={"view": "first_person"})
    np.testing.assert_array_equal(obs, BabyAI3DEnv(level="GoToRedBall", worlds="test").reset(
        options={"level_seed": info["level_seed"]})[0])
    assert info["view"] == "first_person" and views(env) == [VIEW_IDS["first_person"]]
    image = np.full((64, 64, 3), 90, np.uint8)
    _, info = env.reset(seed=0, options={"prompt_image": image})
    assert info["view"] == "top_down" and views(env) == [VIEW_IDS["top_down"]]  # the env's view
    plain = make(wm)
    _, info = plain.reset(seed=0, options={"prompt_image": image})
    assert info["view"] is None and views(plain) == [wm.config.dynamics.unknown_view]
    _, info = plain.reset(seed=0, options={"prompt_image": image, "view": "top_down"})
    assert info["view"] == "top_down"
    frame = env.unwrapped.frame
    with pytest.raises(ValueError, match="text prompt is rendered as a first-person room"):
        env.reset(seed=1, options={"prompt_text": "a red door"})
    with pytest.raises(ValueError, match="options\\['view'\\] must be one of"):
        env.reset(seed=1, options={"view": "side"})
    np.testing.assert_array_equal(env.unwrapped.frame, frame)
    with pytest.raises(ValueError, match="view must be one of"):
        GenieWorldConfig(view="overhead")
    vec = gym.make_vec(GENIE_WORLD_ID, num_envs=2, model=wm, view="top_down")
    _, infos = vec.reset(seed=3, options={"view": ["top_down", "first_person"]})
    assert list(infos["view"]) == ["top_down", "first_person"]
    assert vec.unwrapped._worlds.state.cache.views.tolist() == [VIEW_IDS["top_down"], VIEW_IDS["first_person"]]
    vec.step(np.array([1, 3]))
    vec.close()
    other = env.unwrapped.fork()
    _, info = other.reset(seed=2)
    assert info["view"] == "top_down"
    around = make(wm, level="GoToRedBall", view="top_down", look_around=True)  # four left turns seen from above
    obs, info = around.reset(seed=5)
    np.testing.assert_array_equal(obs, truth.reset(options={"level_seed": info["level_seed"]})[0])
    assert around.unwrapped._worlds.state.time.tolist() == [5] and views(around) == [VIEW_IDS["top_down"]]
