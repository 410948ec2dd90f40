"""world_model: a Genie-2-style latent diffusion world model (autoencoder + causal dynamics transformer).

Importing this package loads no weights; `WorldModel.load("default")` does.
"""

from .autoencoder import Autoencoder, AutoencoderConfig
from .checkpoint import CheckpointError
from .diffusion import Conditioners, Denoiser, DiffusionConfig
from .dynamics import Dynamics, DynamicsConfig, KVCache
from .inference import PRESETS, WorldModel, WorldModelConfig, WorldState
from .sampler import SamplerConfig, karras_sigmas, sample

__all__ = [
    "PRESETS",
    "Autoencoder",
    "AutoencoderConfig",
    "CheckpointError",
    "Conditioners",
    "Denoiser",
    "DiffusionConfig",
    "Dynamics",
    "DynamicsConfig",
    "KVCache",
    "SamplerConfig",
    "WorldModel",
    "WorldModelConfig",
    "WorldState",
    "karras_sigmas",
    "sample",
]
