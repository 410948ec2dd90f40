"""GenieWorld in worker processes: Gymnasium's AsyncVectorEnv and make_vec(vectorization_mode="async") and SB3's
SubprocVecEnv with their default start methods, from a parent whose torch has already run multi-threaded ops (a
forked worker must not hang in torch's OpenMP pool); the per-process thread setting ``num_threads``."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from genie_env import genie_world
from genie_env.genie_world import set_torch_threads

#: Seconds a worker run may take before the test fails (it takes a few; a hang would never end).
TIMEOUT_S = 120

SCRIPT = textwrap.dedent("""
    import sys

    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3.common.vec_env import SubprocVecEnv

    import genie_env

    ID, model, mode = genie_env.GENIE_WORLD_ID, sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    torch.ones(1 << 22).mul_(2).sum()  # start torch's OpenMP pool in the parent, as a model run does
    if mode == "async":
        env = gym.vector.AsyncVectorEnv([lambda: gym.make(ID, model=model)] * 2)
        assert env.reset(seed=0)[0].shape == (2, 64, 64, 3)
        assert env.step(np.array([1, 3]))[0].shape == (2, 64, 64, 3)
        env.close()
        env = gym.make_vec(ID, num_envs=2, vectorization_mode="async", model=model)
        env.reset(seed=0)
        env.step(np.array([0, 2]))
        env.close()
    else:
        env = SubprocVecEnv([lambda: gym.make(ID, model=model)] * 2, start_method=mode)
        env.reset()
        env.step(np.array([1, 3]))
        env.close()
    print("workers ok")
""")


def run_workers(tmp_path, tiny_world_model, mode: str) -> None:
    tiny_world_model().save(tmp_path / "ckpt")
    script = tmp_path / "workers.py"
    script.write_text(SCRIPT)
    # its own process group, so that a hung run's workers end with it
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "ckpt"), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{mode} workers did not answer within {TIMEOUT_S} s: they hang")
    assert proc.returncode == 0 and "workers ok" in stdout, stderr[-3000:]


def test_async_vector_env_with_default_fork(tmp_path, tiny_world_model):
    run_workers(tmp_path, tiny_world_model, "async")


def test_sb3_subproc_vec_env_with_fork(tmp_path, tiny_world_model):
    run_workers(tmp_path, tiny_world_model, "fork")


def test_num_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        set_torch_threads(2)
        assert torch.get_num_threads() == 2
        set_torch_threads(None)  # the main process: torch's own setting stays
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(genie_world, "_FORKED", True)
        set_torch_threads(None)  # a forked worker: one thread
        assert torch.get_num_threads() == 1
        with pytest.raises(RuntimeError, match="context='spawn'"):
            set_torch_threads(2)
        for bad in (0, 1.5, True, "2"):
            with pytest.raises(ValueError, match="num_threads must be an int >= 1"):
                set_torch_threads(bad)
    finally:
        torch.set_num_threads(before)
