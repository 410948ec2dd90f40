"""Test-wide settings: one torch thread (tiny models; avoids oversubscribing the 2 CI cores) and no display; the
tiny random-weight world model the env, vector-env and benchmark tests share."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import torch  # noqa: E402

torch.set_num_threads(1)


import pytest  # noqa: E402


def _tiny_world_model(seed: int = 0):
    """The tiny preset with its zero-initialised (adaLN-Zero) layers made random, so actions change the frames."""
    from dataclasses import replace

    from genie_env.babyai3d import ACTION_MEANINGS
    from world_model import PRESETS, WorldModel

    torch.manual_seed(seed)
    wm = WorldModel.from_config(replace(PRESETS["tiny"], action_meanings=ACTION_MEANINGS))  # a BabyAI3D model
    with torch.no_grad():
        for p in wm.dynamics.parameters():
            if not p.any():
                p.normal_(0.0, 0.1)
    return wm


@pytest.fixture(scope="session")
def tiny_world_model():
    """Factory: tiny_world_model(seed=0) -> a fresh tiny random-weight WorldModel."""
    return _tiny_world_model
