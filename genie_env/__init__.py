"""genie-env: a Genie-2-style world model as a Gymnasium environment.

Importing this package registers the environment ids and does nothing else.
"""

from gymnasium.envs.registration import register

from genie_env.babyai3d import ACTION_MEANINGS, LEVELS, SEED_RANGES, TEST_SEEDS, TRAIN_SEEDS, BabyAI3DEnv, SeedRange
from genie_env.mission import MissionObservation, encode_mission

__all__ = ["ACTION_MEANINGS", "LEVELS", "SEED_RANGES", "TEST_SEEDS", "TRAIN_SEEDS", "BabyAI3DEnv", "SeedRange",
           "BABYAI3D_IDS", "MissionObservation", "encode_mission"]

#: Every registered 3D BabyAI id, e.g. ``genie_env/BabyAI3D-OpenRedDoor-v0``.
BABYAI3D_IDS = tuple(f"genie_env/BabyAI3D-{level}-v0" for level in LEVELS)

for _level, _id in zip(LEVELS, BABYAI3D_IDS):
    register(id=_id, entry_point="genie_env.babyai3d:BabyAI3DEnv", kwargs={"level": _level})
