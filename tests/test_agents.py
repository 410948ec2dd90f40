"""Baseline agents: the registry, random and bot, BC training / save / load, PPO in both worlds, the genie-agent CLI."""

import argparse
import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from agents import AGENTS, make_agent
from agents.agent import NUM_ACTIONS, image_of
from agents.bc_agent import BCAgent, BCArgs, load_bc, train_bc
from agents.ppo_agent import FreshTrainingWorlds, PPOArgs, train_ppo
from agents.train_cli import main as agent_main
from genie_env import TRAIN_SEEDS, BabyAI3DEnv, MissionObservation
from genie_env.recorder import record
from world_model.checkpoint import CheckpointError
from world_model.cli_arguments import add_arguments, from_namespace
from world_model.dataset import DatasetError
from world_model.inference import PRESETS, WorldModel
from genie_env.judge import PRESETS as JUDGE_PRESETS, SuccessJudge


@pytest.fixture(scope="module")
def wm():
    torch.manual_seed(0)
    return WorldModel.from_config(PRESETS["tiny"])


@pytest.fixture(scope="module")
def judge():
    torch.manual_seed(0)
    return SuccessJudge(JUDGE_PRESETS["tiny"])


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    out = tmp_path_factory.mktemp("bc_data") / "gotoredball"
    record("genie_env/BabyAI3D-GoToRedBall-v0", out, frames=160, policy="mix", episodes_per_shard=8, progress=False)
    return out


@pytest.fixture(scope="module")
def bc_checkpoint(recording, tmp_path_factory):
    out = tmp_path_factory.mktemp("bc") / "agent"
    agent = train_bc(BCArgs(data=(str(recording),), out=str(out), steps=6, batch_size=8, preset="tiny",
                            holdout_share=0.3, quiet=True))
    return agent, out


def ground_truth(level="OpenRedDoor", seed=1_000_000):
    env = MissionObservation(BabyAI3DEnv(level, worlds="test"))
    obs, info = env.reset(options={"level_seed": seed})
    return env, obs, info


# ---------------------------------------------------------------------------------------------- registry


def test_registry_names_and_errors():
    assert set(AGENTS) == {"random", "bot", "bc", "ppo-genie", "ppo-gt"}
    assert AGENTS["bot"].ground_truth_only and not AGENTS["random"].needs_path
    with pytest.raises(ValueError, match="unknown agent"):
        make_agent("sima")
    with pytest.raises(ValueError, match="genie-agent train bc"):
        make_agent("bc")
    with pytest.raises(ValueError, match="no checkpoint"):
        make_agent("random", path="somewhere")


def test_random_agent_is_seeded():
    env, obs, info = ground_truth()
    a, b = make_agent("random"), make_agent("random")
    a.reset(env, seed=5)
    b.reset(env, seed=5)
    acts = [a.act(obs, info) for _ in range(20)]
    assert acts == [b.act(obs, info) for _ in range(20)] and all(0 <= x < NUM_ACTIONS for x in acts)


def test_bot_solves_the_ground_truth():
    env, obs, info = ground_truth()
    bot = make_agent("bot")
    bot.reset(env, seed=0)
    for _ in range(50):
        obs, _, terminated, truncated, info = env.step(bot.act(obs, info))
        if terminated or truncated:
            break
    assert info["success"]


# ---------------------------------------------------------------------------------------------- behaviour cloning


def test_bc_trains_saves_loads_and_acts(bc_checkpoint, wm):
    agent, out = bc_checkpoint
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    t = agent.training
    assert t["steps"] == 6 and t["policies"] == ["bot"] and np.isfinite(t["final_loss"])
    loaded = make_agent("bc", path=out)
    assert isinstance(loaded, BCAgent) and loaded.training["samples"] == t["samples"]
    for p, q in zip(agent.net.state_dict().values(), loaded.net.state_dict().values()):
        torch.testing.assert_close(p, q)
    env, obs, info = ground_truth()
    loaded.reset(env, seed=1)
    twin = loaded.spawn()
    twin.reset(None, seed=1)
    acts = [loaded.act(obs, info) for _ in range(5)]
    assert acts == [twin.act(obs, info) for _ in range(5)]  # same seed, same frames -> same actions
    assert all(0 <= a < NUM_ACTIONS for a in acts)
    small = {"image": obs["image"][::2, ::2], "mission": obs["mission"]}  # other frame sizes are resized
    loaded.reset(None, seed=2)
    assert 0 <= loaded.act(small, info) < NUM_ACTIONS


def test_bc_errors(recording, tmp_path):
    with pytest.raises(CheckpointError, match="genie-agent train bc"):
        load_bc(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "genie-world-model"}))
    with pytest.raises(CheckpointError, match="not 'genie-bc-agent'"):
        load_bc(tmp_path)
    with pytest.raises(DatasetError, match="--policy bot"):
        train_bc(BCArgs(data=(str(recording),), out=str(tmp_path / "x"), steps=1, batch_size=4, preset="tiny",
                        policies=("nobody",), quiet=True))


def test_genie_agent_cli_trains_bc(recording, tmp_path, capsys):
    out = tmp_path / "bc"
    assert agent_main(["train", "bc", "--data", str(recording), "--out", str(out), "--steps", "3", "--batch-size",
                       "4", "--preset", "tiny", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["steps"] == 3
    assert make_agent("bc", path=out).net.config.channels == (8, 16)
    assert agent_main(["train", "bc", "--data", str(tmp_path / "none"), "--out", str(out), "--quiet"]) == 2
    assert "genie-data record" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- PPO


def test_ppo_in_the_ground_truth(tmp_path):
    out = tmp_path / "ppo_gt"
    agent = train_ppo(PPOArgs(out=str(out), world="ground_truth", task="open-red-door", timesteps=128, max_steps=20,
                              num_envs=2, n_steps=64, batch_size=64, n_epochs=1, quiet=True))
    assert agent.meta["training"]["timesteps"] >= 128 and agent.meta["world"] == "ground_truth"
    loaded = make_agent("ppo-gt", path=out)
    env, obs, info = ground_truth()
    loaded.reset(env, seed=0)
    assert 0 <= loaded.act(obs, info) < NUM_ACTIONS
    with pytest.raises(ValueError, match="use --agent ppo-gt"):
        make_agent("ppo-genie", path=out)
    # saved as safetensors + JSON (nothing to unpickle), and the loaded policy is the trained one
    assert sorted(p.name for p in out.iterdir()) == ["agent.json", "policy.safetensors"]
    image = image_of(obs)
    with torch.no_grad():
        p_trained, p_loaded = (a.network.get_distribution(a.network.obs_to_tensor(a._fit(image))[0]).distribution.probs
                               for a in (agent, loaded))
    torch.testing.assert_close(p_trained, p_loaded)


def test_ppo_checkpoint_errors(tmp_path):
    out = tmp_path / "ppo_gt"
    train_ppo(PPOArgs(out=str(out), timesteps=64, max_steps=10, num_envs=1, n_steps=64, batch_size=64, n_epochs=1,
                      quiet=True))
    (out / "policy.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="unreadable"):
        make_agent("ppo-gt", path=out)
    meta = json.loads((out / "agent.json").read_text())
    (out / "agent.json").write_text(json.dumps({**meta, "format_version": 1}))
    with pytest.raises(CheckpointError, match="format_version"):
        make_agent("ppo-gt", path=out)
    with pytest.raises(CheckpointError, match="does not exist"):
        make_agent("ppo-gt", path=tmp_path / "nowhere")


def test_ppo_inside_genie_world(tmp_path, wm, judge):
    out = tmp_path / "ppo_genie"
    agent = train_ppo(PPOArgs(out=str(out), world="genie", task="open-red-door", timesteps=128, max_steps=5,
                              policy="mission", num_envs=2, n_steps=64, batch_size=64, n_epochs=1, quiet=True),
                      model=wm, judge=judge)
    assert agent.meta["training"]["timesteps"] >= 128 and agent.meta["policy"] == "mission"
    loaded = make_agent("ppo-genie", path=out)
    env, obs, info = ground_truth()  # trained in GenieWorld, evaluated anywhere
    loaded.reset(env, seed=0)
    assert 0 <= loaded.act(obs, info) < NUM_ACTIONS
    with pytest.raises(ValueError, match="needs a reward"):
        train_ppo(PPOArgs(out=str(tmp_path / "x"), world="genie", timesteps=8, judge="none", quiet=True), model=wm)


def test_fresh_training_worlds_restart_from_new_train_seeds(wm):
    from genie_env.genie_world_vector import GenieWorldVectorEnv
    from genie_env.sb3_adapter import SB3VecEnv

    gym_venv = GenieWorldVectorEnv(num_envs=2, model=wm, level="OpenRedDoor", max_episode_steps=2)
    venv = FreshTrainingWorlds(SB3VecEnv(gym_venv), TRAIN_SEEDS, seed=0)
    venv.reset()
    first = [info["level_seed"] for info in venv.venv.reset_infos]
    for _ in range(2):  # the episodes end at max_episode_steps=2; the worlds restart from new seeds
        venv.step(np.array([1, 2]))
    later = [info["level_seed"] for info in venv.step(np.array([1, 2]))[3]]
    assert all(s in TRAIN_SEEDS for s in first + later) and set(first).isdisjoint(later)


# ---------------------------------------------------------------------------------------------- CLI arguments


@dataclass(frozen=True)
class _Args:
    names: tuple[str, ...] = ("a",)
    """names"""
    count: int = 3
    """how many"""
    ratio: float | None = None
    """a ratio"""
    flag: bool = False
    """a switch"""


def test_cli_arguments_from_a_dataclass():
    parser = argparse.ArgumentParser()
    add_arguments(parser, _Args)
    assert from_namespace(_Args, parser.parse_args([])) == _Args()
    args = from_namespace(_Args, parser.parse_args(["--names", "x", "--names", "y", "z", "--count", "5", "--flag"]))
    assert args == _Args(names=("x", "y", "z"), count=5, flag=True)
    assert "how many (default: 3)" in parser.format_help()
