"""Test-wide settings: one torch thread (tiny models; avoids oversubscribing the 2 CI cores) and no display."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import torch  # noqa: E402

torch.set_num_threads(1)
