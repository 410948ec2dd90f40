"""Mission text as numbers: BabyAI's vocabulary, the word splitter every mission reader uses, and a wrapper for
language-conditioned SB3 policies."""

from __future__ import annotations

import re
from typing import Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

PAD, UNK = "<pad>", "<unk>"
#: Every word BabyAI's mission grammar uses; index 0 pads, index 1 is any other word.
VOCABULARY = (
    PAD, UNK,
    "a", "the", "go", "to", "open", "pick", "up", "put", "next", "and", "then", "after", "you",
    "door", "ball", "box", "key", "object",
    "red", "green", "blue", "purple", "yellow", "grey",
    "on", "your", "left", "right", "in", "front", "of", "behind",
)
WORD_TO_INDEX = {w: i for i, w in enumerate(VOCABULARY)}
MAX_MISSION_WORDS = 24


def mission_words(text: str) -> list[str]:
    """The lower-case words of a mission ("Open the RED door." -> ["open", "the", "red", "door"])."""
    if not isinstance(text, str):
        raise TypeError(f"a mission must be a str, got {type(text).__name__}")
    return re.findall(r"[a-z]+", text.lower())


def build_vocabulary(missions: Sequence[str]) -> tuple[str, ...]:
    """``<pad>``, ``<unk>`` and every word of `missions`, sorted: a vocabulary that covers those missions."""
    words = sorted({w for m in missions for w in mission_words(str(m))} - {PAD, UNK})
    return (PAD, UNK, *words)


def encode_mission(text: str, max_words: int = MAX_MISSION_WORDS) -> np.ndarray:
    """Token ids of a mission, padded (or cut) to ``max_words``: int64 array of shape (max_words,)."""
    words = mission_words(text)[:max_words]
    ids = np.zeros(max_words, dtype=np.int64)
    ids[: len(words)] = [WORD_TO_INDEX.get(w, 1) for w in words]
    return ids


def decode_mission(ids: np.ndarray) -> str:
    """The words of an encoded mission (unknown words come back as ``<unk>``)."""
    return " ".join(VOCABULARY[int(i)] for i in ids if int(i) != 0)


class MissionObservation(gym.Wrapper):
    """Adds the encoded mission to the observation, for ``MultiInputPolicy``.

    Observation: ``Dict(image=<the env's frame Box>, mission=MultiDiscrete([len(VOCABULARY)] * max_words))``.
    The mission is read from ``info["mission"]`` at every reset and step.
    """

    def __init__(self, env: gym.Env, max_words: int = MAX_MISSION_WORDS):
        super().__init__(env)
        self.max_words = max_words
        self.observation_space = spaces.Dict({
            "image": env.observation_space,
            "mission": spaces.MultiDiscrete(np.full(max_words, len(VOCABULARY), dtype=np.int64)),
        })

    def _wrap(self, frame, info) -> dict:
        if "mission" not in info:
            raise KeyError("MissionObservation needs an env that reports info['mission']")
        return {"image": frame, "mission": encode_mission(info["mission"], self.max_words)}

    def reset(self, **kwargs):
        frame, info = self.env.reset(**kwargs)
        return self._wrap(frame, info), info

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        return self._wrap(frame, info), reward, terminated, truncated, info
