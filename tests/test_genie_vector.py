"""GenieWorldVectorEnv (one batched forward per step, SAME_STEP autoreset) and the SB3 adapter (PPO trains)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor

from genie_env import GENIE_WORLD_ID, BabyAI3DEnv, TEST_SEEDS
from genie_env.genie_world_vector import GenieWorldVectorEnv
from genie_env.mission import encode_mission
from genie_env.sb3_adapter import SB3VecEnv

N = 3


@pytest.fixture(scope="module")
def wm(tiny_world_model):
    return tiny_world_model()


def make_vec(wm, num_envs=N, **kwargs):
    return gym.make_vec(GENIE_WORLD_ID, num_envs=num_envs, model=wm, **kwargs)


def test_make_vec_returns_the_batched_env(wm):
    env = make_vec(wm)
    assert isinstance(env, GenieWorldVectorEnv)
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert env.num_envs == N and env.max_episode_steps == 200  # the registered limit, per world
    assert env.single_observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    assert env.observation_space.shape == (N, 64, 64, 3)
    assert env.single_action_space == gym.spaces.Discrete(7)
    assert env.action_space == gym.spaces.MultiDiscrete([7] * N)
    obs, infos = env.reset(seed=0)
    assert obs.shape == (N, 64, 64, 3) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
    assert all(s in TEST_SEEDS for s in infos["level_seed"]) and infos["_mission"].all()
    obs, rewards, terminated, truncated, infos = env.step(env.action_space.sample())
    assert obs.shape == (N, 64, 64, 3) and rewards.shape == terminated.shape == truncated.shape == (N,)
    assert list(infos["step"]) == [1] * N
    assert env.render() is None  # render_mode None: nothing drawn
    env.close()


def test_one_forward_pass_per_step(wm, monkeypatch):
    env = make_vec(wm, num_envs=4)
    env.reset(seed=0)
    batches = []
    step = wm.step

    def counting(state, actions, **kwargs):
        batches.append(len(actions))
        return step(state, actions, **kwargs)

    monkeypatch.setattr(wm, "step", counting)
    for _ in range(3):
        env.step(np.array([0, 1, 2, 3]))
    assert batches == [4, 4, 4]


def test_same_seed_same_frames(wm):
    def run(seed):
        env = make_vec(wm)
        frames = [env.reset(seed=seed)[0]]
        frames += [env.step(np.array([3, 1, 6]))[0] for _ in range(4)]
        return np.stack(frames)

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    env = make_vec(wm)
    np.testing.assert_array_equal(env.reset(seed=[1, 2, 3])[0], make_vec(wm).reset(seed=[1, 2, 3])[0])


def test_same_step_autoreset_on_truncation(wm):
    env = make_vec(wm, max_episode_steps=3, render_mode="rgb_array")
    env.reset(seed=1)
    for _ in range(2):
        _, _, terminated, truncated, infos = env.step(np.zeros(N, int))
        assert not truncated.any() and "final_obs" not in infos
    last_frames = np.stack(env.render())
    obs, _, terminated, truncated, infos = env.step(np.zeros(N, int))
    assert truncated.all() and not terminated.any()
    assert infos["_final_obs"].all() and infos["final_info"]["step"].tolist() == [3] * N
    final = np.stack(infos["final_obs"])
    assert final.shape == (N, 64, 64, 3) and not np.array_equal(final, last_frames)  # a new frame was generated
    assert infos["step"].tolist() == [0] * N  # the returned observation is already the next episode's start
    truth = BabyAI3DEnv(level="GoToLocal", worlds="test")
    for i in range(N):
        frame, info = truth.reset(options={"level_seed": int(infos["level_seed"][i])})
        np.testing.assert_array_equal(obs[i], frame)
        assert infos["mission"][i] == info["mission"]


def test_per_world_termination(wm):
    def toggle_ends(frames, action, mission):
        return float(action == 6), action == 6

    env = make_vec(wm, reward_fn=toggle_ends)
    env.reset(seed=0, options={"prompt_image": np.full((20, 20, 3), 90, np.uint8), "mission": "open the door"})
    env.step(np.array([3, 3, 3]))
    obs, rewards, terminated, truncated, infos = env.step(np.array([6, 0, 6]))
    assert rewards.tolist() == [1.0, 0.0, 1.0] and terminated.tolist() == [True, False, True]
    assert infos["_final_obs"].tolist() == [True, False, True] and infos["step"].tolist() == [0, 2, 0]
    np.testing.assert_array_equal(obs[0], np.full((64, 64, 3), 90, np.uint8))  # restarted from the same prompt
    assert list(infos["mission"]) == ["open the door"] * N


def test_per_world_options_and_reset_mask(wm):
    images = np.stack([np.full((32, 32, 3), v, np.uint8) for v in (10, 120, 240)])
    env = make_vec(wm, mission_observation=True)
    obs, infos = env.reset(seed=0, options={"prompt_image": images, "mission": ["a", "go to the red ball", "c"]})
    assert [int(obs["image"][i].mean()) for i in range(N)] == [10, 120, 240]
    np.testing.assert_array_equal(obs["mission"][1], encode_mission("go to the red ball"))
    env.step(np.array([3, 3, 3]))
    mask = np.array([False, True, False])
    obs, infos = env.reset(options={"reset_mask": mask, "prompt_text": "a red door"})
    assert infos["_mission"].tolist() == [False, True, False] and infos["mission"][1] == "open the red door"
    assert env.missions == ["a", "open the red door", "c"]
    with pytest.raises(ValueError, match="one per world"):
        env.reset(options={"mission": ["x", "y"]})
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.zeros(N, bool)})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"prompt": "x"})
    with pytest.raises(ValueError, match="actions must be"):
        env.step(np.array([0, 1]))


def test_failed_reset_changes_nothing(wm):
    env = make_vec(wm)
    with pytest.raises(FileNotFoundError):
        env.reset(seed=0, options={"prompt_image": ["missing.png", None, None]})
    env.reset(seed=0)
    first = env.step(np.array([3, 3, 3]))[0]
    state = env.np_random.bit_generator.state
    with pytest.raises(FileNotFoundError):
        env.reset(seed=1, options={"prompt_image": "missing.png"})
    assert env.np_random.bit_generator.state == state
    again = make_vec(wm)
    again.reset(seed=0)
    np.testing.assert_array_equal(again.step(np.array([3, 3, 3]))[0], first)


def test_bad_actions_are_named(wm):
    env = make_vec(wm)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"out of range: actions\[0\] = -1, actions\[2\] = 7"):
        env.step(np.array([-1, 0, 7]))
    with pytest.raises(ValueError, match=r"got shape \(2,\)"):
        env.step([0, 1])
    with pytest.raises(ValueError, match="a bool is not an action"):
        env.step(np.array([True, False, True]))
    with pytest.raises(ValueError, match="got dtype float64"):
        env.step(np.array([0.0, 1.0, 2.0]))
    env.step([0, 1, 6])  # a plain list of ints is fine


def test_memory_bounded(wm):
    env = make_vec(wm, max_episode_steps=50)
    env.reset(seed=0)
    env.step(np.zeros(N, int))
    size = env.state_bytes()
    for _ in range(120):  # crosses two autoresets
        env.step(np.random.default_rng(0).integers(0, 7, N))
    assert env.state_bytes() == size


# ---------------------------------------------------------------------------------------------- SB3


def test_sb3_adapter_infos(wm):
    venv = SB3VecEnv(make_vec(wm, max_episode_steps=2))
    venv.seed(3)
    first = venv.reset()
    venv.seed(3)
    np.testing.assert_array_equal(venv.reset(), first)
    assert venv.reset_infos[0]["step"] == 0
    venv.step(np.zeros(N, int))
    obs, rewards, dones, infos = venv.step(np.zeros(N, int))
    assert dones.all() and rewards.dtype == np.float32 and isinstance(infos, list) and len(infos) == N
    for info in infos:
        assert info["terminal_observation"].shape == (64, 64, 3)
        assert info["TimeLimit.truncated"] is True and info["step"] == 2
    assert venv.get_attr("render_mode") == [None] * N and venv.env_is_wrapped(gym.Wrapper) == [False] * N
    with pytest.raises(ValueError, match="SAME_STEP"):
        SB3VecEnv(gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")]))


def test_ppo_trains_through_the_adapter(wm):
    venv = VecMonitor(SB3VecEnv(make_vec(wm, num_envs=4, max_episode_steps=40,
                                         reward_fn=lambda frames, action, mission: (float(action == 3), False))))
    model = PPO("CnnPolicy", venv, n_steps=32, batch_size=64, n_epochs=2, learning_rate=3e-4, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert len(model.ep_info_buffer) >= 4 and model.ep_info_buffer[0]["l"] == 40  # VecMonitor saw the time limit
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    actions, _ = model.predict(venv.reset(), deterministic=True)
    assert actions.shape == (4,)


def test_ppo_multi_input_with_missions(wm):
    venv = SB3VecEnv(make_vec(wm, num_envs=2, mission_observation=True, max_episode_steps=10))
    model = PPO("MultiInputPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=32)
    assert model.num_timesteps >= 32
