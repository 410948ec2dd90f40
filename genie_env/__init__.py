"""genie-env: a Genie-2-style world model as a Gymnasium environment.

Importing this package registers the environment ids and does nothing else (the world-model classes are
imported on first use of their names).
"""

from gymnasium.envs.registration import register

from genie_env.babyai3d import ACTION_MEANINGS, LEVELS, SEED_RANGES, TEST_SEEDS, TRAIN_SEEDS, BabyAI3DEnv, SeedRange
from genie_env.mission import MissionObservation, encode_mission

__all__ = ["ACTION_MEANINGS", "LEVELS", "SEED_RANGES", "TEST_SEEDS", "TRAIN_SEEDS", "BabyAI3DEnv", "SeedRange",
           "BABYAI3D_IDS", "GENIE_WORLD_ID", "MissionObservation", "encode_mission",
           "GenieWorldConfig", "GenieWorldEnv", "GenieWorldVectorEnv", "SB3VecEnv", "from_text"]

#: Every registered 3D BabyAI id, e.g. ``genie_env/BabyAI3D-OpenRedDoor-v0``.
BABYAI3D_IDS = tuple(f"genie_env/BabyAI3D-{level}-v0" for level in LEVELS)
#: The world-model environment; ``gym.make_vec`` on it returns the batched GenieWorldVectorEnv.
GENIE_WORLD_ID = "genie_env/GenieWorld-v7"

for _level, _id in zip(LEVELS, BABYAI3D_IDS):
    register(id=_id, entry_point="genie_env.babyai3d:BabyAI3DEnv", kwargs={"level": _level})

register(
    id=GENIE_WORLD_ID,
    entry_point="genie_env.genie_world:GenieWorldEnv",
    vector_entry_point="genie_env.genie_world_vector:GenieWorldVectorEnv",
    max_episode_steps=200,
    # Gymnasium's PassiveEnvChecker counts a first reset that raised (a typo in a prompt path) as checked and then
    # fails the next step with a TypeError of its own; the env passes Gymnasium's and SB3's check_env in the tests.
    disable_env_checker=True,
)

# Names re-exported lazily (PEP 562): importing them pulls in torch and the world model.
_LAZY = {
    "GenieWorldConfig": "genie_env.genie_world",
    "GenieWorldEnv": "genie_env.genie_world",
    "GenieWorldVectorEnv": "genie_env.genie_world_vector",
    "SB3VecEnv": "genie_env.sb3_adapter",
    "from_text": "genie_env.text_prompt",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'genie_env' has no attribute {name!r}")
