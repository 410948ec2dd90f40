"""The tasks: named BabyAI levels whose layouts and missions MiniGrid generates, with an episode step limit.

A task's success is BabyAI's verifier in the 3D ground truth (``BabyAI3DEnv``, ``info["success"]``) and the
success judge (or a user ``reward_fn``) inside GenieWorld. Agents train on a task's training worlds; genie-bench
(``benchmarks.tasks``) evaluates them on its held-out ones.

    task = get_task("open-red-door")     # Task(name, level="OpenRedDoor", instruction, max_steps=50)
    env = BabyAI3DEnv(level=task.level, worlds="test")
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    """One generated task: a BabyAI level (its layouts and missions) and the step limit of an episode."""

    name: str
    """Short name used on the command line ("open-red-door")."""
    level: str
    """The BabyAI level (one of ``genie_env.LEVELS``) that generates the task's worlds and missions."""
    instruction: str
    """The shape of its missions, for people ("open the <colour> door")."""
    max_steps: int
    """Steps after which an episode ends unsolved (>= 1)."""


#: Every task. Step limits are BabyAI's own, capped at 128 (the bot needs far fewer; GenieWorld steps cost time).
TASKS = {t.name: t for t in (
    Task("open-red-door", "OpenRedDoor", "open the red door", 50),
    Task("open-door", "OpenDoor", "open the <colour> door / the door on your <side>", 128),
    Task("go-to-object", "GoToLocal", "go to the <colour> <object> (among distractors)", 64),
    Task("go-to-only-object", "GoToObj", "go to the <colour> <object> (alone in the room)", 64),
    Task("go-to-red-ball", "GoToRedBall", "go to the red ball (among distractors)", 64),
    Task("pick-up", "PickupLoc", "pick up the <object> (on your left / in front of you ...)", 64),
    Task("unlock-door", "UnlockLocal", "open the locked door (pick up its key first)", 128),
    Task("put-next-to", "PutNextLocal", "put the <colour> <object> next to the <colour> <object>", 128),
)}


def get_task(name: str) -> Task:
    """The task called `name` (a key of :data:`TASKS`); ValueError naming the choices otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]
