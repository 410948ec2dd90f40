"""The dynamics transformer: a DiT over latent frames with a frame-causal mask and a KV cache.

Each latent frame (C, h, w) is cut into p x p patches -> N tokens of width D (64 tokens for 16x16 latents, p = 2;
16 tokens for p = 4). A sequence of T frames is T * N tokens. Two attention layouts (`DynamicsConfig.attention`):

- "frame_causal": one attention per block over all T * N tokens; tokens of frame t attend to every token of
  frames <= t (frame-causal mask, bidirectional inside a frame). Cost grows with (T * N)^2.
- "factorised" (the spatiotemporal transformer of Genie, Bruce et al. 2024): each block attends first among the N
  tokens of one frame (spatial, bidirectional), then among the T tokens at the same position across frames
  (temporal, causal), then runs the MLP once. Cost grows with T * N^2 + N * T^2; information reaches another
  position of an earlier frame in two hops (temporal, then spatial) instead of one.

Positions: a learned spatial embedding (N, D) added to the tokens (the only spatial position either layout
gets), and rotary embeddings (RoPE, Su et al. 2021) over *time* on the queries and keys of the attention that
crosses frames, so it depends only on relative frame offsets; keys are rotated once, with their absolute frame
index (angles in float64), when they enter the cache, so cached keys stay valid while absolute time grows without
bound.

Previous-frame input (`prev_frame`, on by default): the tokens of frame t are built from its own noisy latent patch
concatenated with the patch at the same place of frame t-1 (as the network sees it, c_in-scaled, with whatever noise
it carries), and frame t's conditioning also embeds frame t-1's noise level; a frame with no predecessor (an episode's
first frame, a window's first frame) gets zeros and a learned "no previous frame" vector. Inside a window the
predecessor is the previous frame of the window; for the first new frame after a KV cache it is the cache's latest
frame (the caller passes it as `prev`).

Pose-keyed memory (`memory`, off by default; WorldMem, Xiao et al. 2025, retrieves past frames by camera pose): a
frame's pose is dead-reckoned from the actions before it: (segment, heading, forwards), where a turn moves the
heading by one quarter, forward adds one (whether or not the cell was free: the actions cannot tell), and START or
NULL begins a new segment (NULL hides the action, so the pose after it is unknown relative to what came before).
Each frame's tokens also get, as more input channels, the patch at the same place of its *memory frame*: the most
recent earlier frame of the window or cache in the same segment with the same heading modulo four (after (left,
right) the frame two back; after four lefts the start), and its conditioning embeds the memory frame's noise level
and the forwards taken since it (0, 1, 2 or more, or "no memory frame"). Copying a view seen before becomes a
local path, as copying the previous frame is through `prev_frame`. With `memory_turns_only` only a frame the agent
turned into gets a memory frame (any other frame's would be its predecessor, a second copy of the previous frame).

Every frame carries one conditioning vector: the embedding of its diffusion noise level (EDM c_noise) plus the
embedding of the action that led to it (frame t+1 gets action a_t; an episode's first frame gets START; NULL is
the "no action" token used for classifier-free guidance), plus, for view-conditioned models (`views` > 0), the
embedding of the view its world is rendered in (one per sequence: an id of `VIEW_IDS`, or the unknown id). It
modulates each block with adaLN-Zero (Peebles & Xie 2023, DiT): shift/scale before attention and MLP, and a gate on
each residual branch, all initialised to zero.

KV cache: `KVCache` keeps, per layer, the keys/values of up to `context_frames` past frames in a ring buffer (one
slot per frame). A new frame's forward only computes its own N tokens, attending to the cached tokens + itself;
when the buffer is full the oldest frame's slot is overwritten, so memory is bounded. Frame-causal layers cache
the keys/values of all N tokens of every past frame, laid out (B, H, slots * N, hd); factorised layers cache only
their temporal attention's keys/values, one per position and frame, laid out (B, N * H, slots, hd) (the N
positions batched as heads; the same number of values). The spatial attention of a new frame needs only its own
tokens, so it caches nothing. Worlds in a batch may be at different times (a vector env resets one world): each
world has its own write slot and slot-valid mask.

Note on the sliding window: a cached frame's keys were computed while it could still see frames that have since
left the window (information flows through layers, as in Mistral's rolling buffer), so after the window slides the
cached path and a recompute over the window differ slightly; before it slides they agree to float precision.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


ATTENTION_LAYOUTS = ("frame_causal", "factorised")
VIEW_IDS = {"first_person": 0, "top_down": 1}
"""The id of each view a world can be rendered in, as the recordings name it (`shards.Episode.view`)."""
MEMORY_GAPS = 3
"""Forward actions since the memory frame are embedded as 0, 1, or MEMORY_GAPS - 1 and more; id MEMORY_GAPS means
no memory frame."""


@dataclass(frozen=True)
class DynamicsConfig:
    latent_channels: int = 4
    """Channels of the autoencoder's latent grid."""
    latent_size: int = 16
    """Height and width of the latent grid."""
    patch_size: int = 2
    """Side of the square latent patch that becomes one token."""
    width: int = 256
    """Transformer width D."""
    depth: int = 6
    """Number of transformer blocks."""
    heads: int = 4
    """Attention heads (head dim = width / heads)."""
    mlp_ratio: float = 4.0
    """MLP hidden width / D."""
    num_actions: int = 7
    """Number of real actions; two more embeddings are added: START and NULL."""
    context_frames: int = 16
    """Past frames kept in the KV cache (the sliding context window)."""
    rope_base: float = 10000.0
    """RoPE base (Su et al. 2021)."""
    noise_features: int = 128
    """Size of the Fourier feature vector of c_noise."""
    prev_frame: bool = True
    """Each frame's tokens also get the previous frame's (noisy) latent patch at the same place as extra input
    channels, and its noise level in the conditioning (channel concatenation, as DIAMOND and GameNGen condition on
    past frames): copying what does not change becomes a local path, and attention only has to learn the change.
    A checkpoint config without this key loads as False."""
    prev_prior: bool = False
    """The denoiser's estimate starts from the previous frame instead of from zero (`Denoiser.prior`): D = p + k (x -
    p) + c_out F in what `Dynamics.prior_map` keeps of each token (the identity unless set; `genie-train transplant
    --prev-prior` sets it to what the old latent cannot carry), with p the previous frame's noisy latent times
    `prev_prior_gain`, faded by its noise level, and k = s^2 / (sigma^2 + s^2), s^2 the spread `prev_prior_sigma`
    squared plus the noise p carries: the Bayes estimate of a frame drawn around p, which the network's output F
    corrects. Where nothing changes, F only has to stay near zero. False: EDM's D (a checkpoint config without this
    key)."""
    prev_prior_sigma: float | tuple[float, ...] | None = None
    """With `prev_prior`: the spread of the change from the previous frame in the prior's directions (in units of
    the latent), one for every action or one per action id (num_actions + 2 values: the actions, START, NULL), as
    `genie-train transplant --prev-prior` fits it; None: the denoiser's sigma_data (EDM around p instead of
    zero)."""
    prev_prior_gain: float | tuple[float, ...] | None = None
    """With `prev_prior`: the factor on the previous frame in the prior's mean, one value or one per action id (the
    regression of a frame on its predecessor in the prior's directions: 1 where an action changes nothing, under 1
    where it shows a new view); None: 1."""
    attention: str = "frame_causal"
    """Attention layout of every block: "frame_causal" (all tokens of frames <= t) or "factorised" (spatial within
    a frame, then causal temporal per position; Genie's ST-transformer). See the module docstring. A checkpoint
    config without this key loads as "frame_causal"."""
    views: int = 0
    """Number of view embeddings (0 or len(VIEW_IDS)): > 0 adds to every frame's conditioning the embedding of its
    world's view (ids `VIEW_IDS`; one more embedding, id `unknown_view`, stands for a view nobody gave and for the
    view dropout of training), zero-initialised. 0: not view-conditioned (a checkpoint config without this key)."""
    view_adapter: int = 0
    """Hidden width of the per-view adapters of `adapter_views` in every block (0: none; needs `views`): for a world
    of such a view, one more residual branch of that view's own (an MLP with its own adaLN-Zero shift, scale and
    gate, closed at initialisation) after the block's MLP. Trained alone (`genie-train dynamics --train-only
    view-adapters`), an adapter changes what the model does in its view and nothing else: worlds of the other views
    and of the unknown view never run it. 0: no adapters (a checkpoint config without this key)."""
    adapter_views: tuple[str, ...] = ()
    """The views (names of `VIEW_IDS`) that get an adapter when `view_adapter` > 0, e.g. ("top_down",)."""
    memory: bool = False
    """Pose-keyed memory input (see the module docstring): each frame's tokens also get the latent patch of the most
    recent earlier frame seen from the same heading (headings dead-reckoned from the turn actions), and its
    conditioning the memory frame's noise level and the number of forward actions since it (0, 1, 2 or more; or
    "none"), all zero-initialised. False: no memory input (a checkpoint config without this key)."""
    memory_turns_only: bool = False
    """With `memory`: only a frame the agent turned into gets a memory frame (every other frame's memory frame would
    be its predecessor, which `prev_frame` already gives); False: every frame with a match gets one."""
    turn_left_action: int = 1
    """Action id that turns the agent 90 degrees left (the memory's dead reckoning; ids of `ACTION_MEANINGS`)."""
    turn_right_action: int = 2
    """Action id that turns the agent 90 degrees right."""
    forward_action: int = 3
    """Action id that moves the agent one cell forward (when the cell is free)."""

    def __post_init__(self):
        for name in ("prev_prior_sigma", "prev_prior_gain"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):  # a JSON list, a flag's values; one value is a float
                value = float(value[0]) if len(value) == 1 else tuple(float(v) for v in value)
                object.__setattr__(self, name, value)
            if value is not None:
                values = value if isinstance(value, tuple) else (value,)
                if not self.prev_prior or min(values) < 0 or len(values) not in (1, self.num_actions + 2):
                    raise ValueError(f"{name}={value} needs prev_prior and one value >= 0, or one per action id "
                                     f"({self.num_actions + 2}: the actions, START, NULL); or None")
        if self.attention not in ATTENTION_LAYOUTS:
            raise ValueError(f"unknown attention layout {self.attention!r}; choose one of "
                             f"{', '.join(ATTENTION_LAYOUTS)}")
        if self.patch_size < 1 or self.latent_size % self.patch_size:
            raise ValueError(f"patch_size {self.patch_size} must divide latent_size {self.latent_size} (e.g. 2 or 4 "
                             "for 16x16 latents)")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of heads {self.heads}")
        if self.memory:
            ids = (self.turn_left_action, self.turn_right_action, self.forward_action)
            if len(set(ids)) != 3 or not all(0 <= i < self.num_actions for i in ids):
                raise ValueError(f"memory needs three distinct action ids in [0, {self.num_actions}) for turn left, "
                                 f"turn right and forward, got {ids}")
        if self.views not in (0, len(VIEW_IDS)):
            raise ValueError(f"views must be 0 (not view-conditioned) or {len(VIEW_IDS)} ({', '.join(VIEW_IDS)}), "
                             f"got {self.views}")
        object.__setattr__(self, "adapter_views", tuple(self.adapter_views))  # a JSON list reads as a tuple
        if self.view_adapter < 0 or (self.view_adapter and not self.views):
            raise ValueError(f"view_adapter must be >= 0, and > 0 only for a view-conditioned model (views > 0); got "
                             f"view_adapter={self.view_adapter}, views={self.views}")
        bad = [v for v in self.adapter_views if v not in VIEW_IDS]
        if bad or len(set(self.adapter_views)) != len(self.adapter_views) or (
                bool(self.view_adapter) != bool(self.adapter_views)):
            raise ValueError(f"adapter_views must name distinct views of {', '.join(VIEW_IDS)}, at least one exactly "
                             f"when view_adapter > 0; got adapter_views={self.adapter_views}, "
                             f"view_adapter={self.view_adapter}")

    @property
    def grid(self) -> int:
        return self.latent_size // self.patch_size

    @property
    def tokens_per_frame(self) -> int:
        return self.grid**2

    @property
    def patch_dim(self) -> int:
        return self.latent_channels * self.patch_size**2

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    @property
    def factorised(self) -> bool:
        return self.attention == "factorised"

    @property
    def start_action(self) -> int:
        return self.num_actions

    @property
    def null_action(self) -> int:
        return self.num_actions + 1

    @property
    def unknown_view(self) -> int:
        """The view id of a world whose view is not known (0 for a model without view conditioning)."""
        return self.views

    def view_ids(self, views, batch: int, device=None) -> torch.Tensor:
        """View ids (batch,) long of `views`: None (every view unknown), one view, or a sequence of one per world;
        a view is a name of `VIEW_IDS` or None (unknown). Models without view conditioning get unknown ids."""
        if views is None or isinstance(views, str):
            views = [views] * batch
        views = list(views)
        if len(views) != batch:
            raise ValueError(f"got {len(views)} views for {batch} worlds; pass one per world, or one for all")
        bad = sorted({str(v) for v in views if v is not None and v not in VIEW_IDS})
        if bad:
            raise ValueError(f"unknown views {bad}; a view is one of {', '.join(VIEW_IDS)} or None (unknown)")
        ids = [self.unknown_view if v is None or not self.views else VIEW_IDS[v] for v in views]
        return torch.tensor(ids, dtype=torch.long, device=device)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DynamicsConfig":
        return cls(**{"prev_frame": False, **d})  # a config without the key: no previous-frame input


PRESETS = {
    "tiny": DynamicsConfig(width=32, depth=2, heads=2, noise_features=16, context_frames=4),
    "small": DynamicsConfig(width=128, depth=4, heads=4, noise_features=64),  # quick ablations on a CPU
    "default": DynamicsConfig(),
}


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, T, C, h, w) -> (B, T, N, C*p*p) with N = (h/p) * (w/p), row-major over patches."""
    B, T, C, h, w = x.shape
    x = x.reshape(B, T, C, h // p, p, w // p, p)
    return x.permute(0, 1, 3, 5, 2, 4, 6).reshape(B, T, (h // p) * (w // p), C * p * p)


def unpatchify(x: torch.Tensor, p: int, C: int, h: int, w: int) -> torch.Tensor:
    """(B, T, N, C*p*p) -> (B, T, C, h, w); inverse of `patchify`."""
    B, T = x.shape[:2]
    x = x.reshape(B, T, h // p, w // p, C, p, p)
    return x.permute(0, 1, 4, 2, 5, 3, 6).reshape(B, T, C, h, w)


def rope_angles(positions: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame positions (B, T) -> cos, sin (B, 1, T, head_dim/2), computed in float64 for large positions."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device) / head_dim)
    angles = positions.to(torch.float64)[..., None] * inv_freq  # (B, T, hd/2)
    return angles.cos().float()[:, None], angles.sin().float()[:, None]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """Rotate (B, H, T*N, hd) by per-frame angles cos/sin (B, 1, T, hd/2) (GPT-NeoX half split)."""
    B, H, L, hd = x.shape
    x = x.view(B, H, L // tokens_per_frame, tokens_per_frame, hd)  # (B, H, T, N, hd)
    x1, x2 = x.float().chunk(2, dim=-1)
    cos, sin = cos[:, :, :, None], sin[:, :, :, None]  # (B, 1, T, 1, hd/2)
    out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.to(x.dtype).view(B, H, L, hd)


def frame_causal_mask(frames: int, tokens_per_frame: int, device=None) -> torch.Tensor:
    """(T*N, T*N) bool, True where query token may attend key token: frame(key) <= frame(query)."""
    f = torch.arange(frames, device=device).repeat_interleave(tokens_per_frame)
    return f[None, :] <= f[:, None]


class KVCache:
    """Per-layer keys/values of the last `context_frames` frames of B worlds, in a ring buffer of frame slots.

    k[l], v[l]: (B, H, (S + SCRATCH_FRAMES) * N, hd) with S = context_frames slots (tokens from S*N on are scratch
    space for the frames being denoised, never context) for frame-causal models, (B, N * H, S + SCRATCH_FRAMES, hd)
    (the temporal attention's, per position) for factorised ones; valid: (B, S) bool; next_slot: (B,) long.
    Also keeps what a recompute over the window needs: the noisy latents of the cached frames (B, S, C, h, w),
    their noise levels (B, S), conditioning actions (B, S) and absolute frame times (B, S); each world's view
    id (B,) long (`DynamicsConfig.view_ids`), which conditions every frame run over the cache; and the cached frames'
    dead-reckoned poses (B, S, 3) long (segment, heading, forwards; `Dynamics.poses`), which memory models look
    their memory frames up by.
    """

    def __init__(self, k, v, valid, next_slot, latents, sigmas, actions, times, views, poses):
        self.k, self.v = k, v
        self.valid, self.next_slot = valid, next_slot
        self.latents, self.sigmas, self.actions, self.times = latents, sigmas, actions, times
        self.views, self.poses = views, poses

    #: Room for this many new frames' tokens after the S*N cached ones in every k/v buffer: a step writes its new
    #: keys/values there and attends to one contiguous buffer instead of concatenating the whole cache every
    #: denoising step (2 = the guided and unguided branches of one frame).
    SCRATCH_FRAMES = 2

    @classmethod
    def empty(cls, cfg: DynamicsConfig, batch: int, device, dtype=torch.float32,
              views: torch.Tensor | None = None) -> "KVCache":
        """An empty cache of `batch` worlds; views: their view ids (batch,) long, default unknown."""
        S, N = cfg.context_frames, cfg.tokens_per_frame
        if cfg.factorised:
            shape = (batch, N * cfg.heads, S + cls.SCRATCH_FRAMES, cfg.head_dim)
        else:
            shape = (batch, cfg.heads, (S + cls.SCRATCH_FRAMES) * N, cfg.head_dim)
        zeros = lambda *s, **kw: torch.zeros(*s, device=device, **kw)  # noqa: E731
        return cls(
            k=[zeros(shape, dtype=dtype) for _ in range(cfg.depth)],
            v=[zeros(shape, dtype=dtype) for _ in range(cfg.depth)],
            valid=zeros(batch, S, dtype=torch.bool),
            next_slot=zeros(batch, dtype=torch.long),
            latents=zeros(batch, S, cfg.latent_channels, cfg.latent_size, cfg.latent_size),
            sigmas=zeros(batch, S),
            actions=zeros(batch, S, dtype=torch.long),
            times=zeros(batch, S, dtype=torch.long),
            views=(torch.full((batch,), cfg.unknown_view, dtype=torch.long, device=device) if views is None
                   else views.to(device=device, dtype=torch.long).clone()),
            poses=zeros(batch, S, 3, dtype=torch.long),
        )

    @property
    def batch(self) -> int:
        return self.valid.shape[0]

    @property
    def slots(self) -> int:
        return self.valid.shape[1]

    @property
    def num_frames(self) -> torch.Tensor:
        """(B,) number of frames currently cached per world (<= context_frames)."""
        return self.valid.sum(dim=1)

    def _map(self, fn) -> "KVCache":
        return KVCache([fn(t) for t in self.k], [fn(t) for t in self.v], fn(self.valid), fn(self.next_slot),
                       fn(self.latents), fn(self.sigmas), fn(self.actions), fn(self.times), fn(self.views),
                       fn(self.poses))

    def clone(self) -> "KVCache":
        return self._map(lambda t: t.clone())

    def select(self, index: torch.Tensor) -> "KVCache":
        """A new cache with the worlds `index` (1-D long tensor) in that order."""
        return self._map(lambda t: t[index].clone())

    def replace(self, i: int, other: "KVCache", j: int = 0) -> None:
        """Overwrite world i of this cache by world j of `other` (in place)."""
        for dst, src in zip(self._tensors(), other._tensors()):
            dst[i] = src[j].to(dst.dtype)

    def _tensors(self) -> list[torch.Tensor]:
        return [*self.k, *self.v, self.valid, self.next_slot, self.latents, self.sigmas, self.actions,
                self.times, self.views, self.poses]

    def to(self, dtype: torch.dtype) -> "KVCache":
        """Same cache with keys/values in `dtype` (bookkeeping tensors unchanged)."""
        if self.k[0].dtype == dtype:
            return self
        return KVCache([t.to(dtype) for t in self.k], [t.to(dtype) for t in self.v], self.valid, self.next_slot,
                       self.latents, self.sigmas, self.actions, self.times, self.views, self.poses)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._tensors())

    def latest_pose(self) -> torch.Tensor:
        """(B, 3) long: the pose of every world's latest cached frame (zeros for a world with none)."""
        slot = (self.next_slot - 1) % self.slots
        b = torch.arange(self.batch, device=slot.device)
        return torch.where(self.valid[b, slot][:, None], self.poses[b, slot], torch.zeros_like(self.poses[b, slot]))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight.to(x.dtype), self.eps)


class Attention(nn.Module):
    def __init__(self, cfg: DynamicsConfig):
        super().__init__()
        self.cfg = cfg
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width)
        self.proj = nn.Linear(cfg.width, cfg.width)
        self.q_norm = RMSNorm(cfg.head_dim)  # QK-norm keeps bf16 attention logits tame
        self.k_norm = RMSNorm(cfg.head_dim)

    def forward(self, x, cos, sin, mask, past_k=None, past_v=None, past_len=0):
        """x (B, L, D) with L = T*N -> (out (B, L, D), k, v (B, H, L, hd) after RoPE). past_k / past_v: cache
        buffers whose first past_len tokens are attended to (the rest is scratch space, see KVCache)."""
        B, L, D = x.shape
        H, hd, N = self.cfg.heads, self.cfg.head_dim, self.cfg.tokens_per_frame
        q, k, v = self.qkv(x).view(B, L, 3, H, hd).permute(2, 0, 3, 1, 4)  # each (B, H, L, hd)
        q = apply_rope(self.q_norm(q), cos, sin, N)
        k = apply_rope(self.k_norm(k), cos, sin, N)
        y, k, v = self.attend(q, k, v, mask, past_k, past_v, past_len)
        y = y.transpose(1, 2).reshape(B, L, D)
        return self.proj(y), k, v

    @staticmethod
    def attend(q, k, v, mask, past_k=None, past_v=None, past_len=0, explicit: bool = False):
        """Scaled dot-product attention of q (B, H', L, hd) over past_k/past_v[:, :, :past_len] (if given) and
        k, v (B, H', L, hd); -> (y (B, H', L, hd), k, v). Without gradients, and when the buffers have room and
        k's dtype, the new keys/values are written into the buffers' scratch space after past_len (see KVCache).
        explicit: `softmax_attention` instead of torch's fused kernel (faster for many short sequences)."""
        L = k.shape[2]
        if past_k is not None:
            P = past_len
            if past_k.dtype == k.dtype and past_k.shape[2] >= P + L and not torch.is_grad_enabled():
                past_k[:, :, P:P + L] = k  # the new tokens go to the scratch space after the cached ones
                past_v[:, :, P:P + L] = v
                keys, values = past_k[:, :, :P + L], past_v[:, :, :P + L]  # (B, H, S*N + L, hd), no copy
            else:
                keys = torch.cat([past_k[:, :, :P].to(k.dtype), k], dim=2)
                values = torch.cat([past_v[:, :, :P].to(v.dtype), v], dim=2)
        else:
            keys, values = k, v
        if explicit:
            return softmax_attention(q, keys, values, mask), k, v
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask), k, v  # (B, H', L, hd)


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(q k^T / sqrt(hd), masked) v as plain batched matrix products, the softmax in fp32. For the many
    short sequences of the factorised layout (a frame's tokens, a position's frames) it is several times faster on
    a CPU than torch's fused kernel forward + backward (forward alone, about as fast or slower). q (..., L, hd),
    k, v (..., K, hd), mask broadcastable to (..., L, K), True = attend."""
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1, dtype=torch.float32).to(v.dtype) @ v


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class ViewAdapter(nn.Module):
    """One view's residual branch of a block (`DynamicsConfig.view_adapter`): an MLP with its own adaLN-Zero
    shift, scale and gate from the frame's conditioning; the gate starts at zero, so the branch starts closed."""

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))
        self.ada = nn.Linear(width, 3 * width)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (b, T, N, D), cond (b, T, D) -> the branch's output (b, T, N, D)."""
        shift, scale, gate = self.ada(F.silu(cond))[:, :, None].chunk(3, dim=-1)
        return gate * self.mlp(modulate(self.norm(x), shift, scale))


def view_adapters(cfg: DynamicsConfig) -> nn.ModuleDict | None:
    """A block's adapters, one per view of `adapter_views` (keyed by its name), or None without `view_adapter`."""
    if not cfg.view_adapter:
        return None
    return nn.ModuleDict({v: ViewAdapter(cfg.width, cfg.view_adapter) for v in cfg.adapter_views})


def apply_view_adapters(adapters: nn.ModuleDict | None, x: torch.Tensor, cond: torch.Tensor,
                        view: torch.Tensor | None) -> torch.Tensor:
    """x plus, for each world of a view with an adapter, that adapter's branch (worlds of other views or the
    unknown view, or every world when `view` is None, pass unchanged). x (B, T, N, D), cond (B, T, D), view (B,)
    long."""
    if adapters is None or view is None:
        return x
    for name, adapter in adapters.items():
        rows = (view == VIEW_IDS[name]).nonzero().squeeze(1)
        if rows.numel() == x.shape[0]:
            x = x + adapter(x, cond)
        elif rows.numel():
            x = x.index_add(0, rows, adapter(x[rows], cond[rows]))
    return x


class Block(nn.Module):
    def __init__(self, cfg: DynamicsConfig):
        super().__init__()
        D = cfg.width
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(cfg)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        hidden = int(cfg.mlp_ratio * D)
        self.mlp = nn.Sequential(nn.Linear(D, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, D))
        self.ada = nn.Linear(D, 6 * D)  # adaLN-Zero modulation from the per-frame conditioning
        self.adapters = view_adapters(cfg)

    def forward(self, x, cond, cos, sin, mask, past_k=None, past_v=None, past_len=0, view=None):
        """x (B, T, N, D), cond (B, T, D), view (B,) long or None -> x (B, T, N, D), k, v."""
        B, T, N, D = x.shape
        mod = self.ada(F.silu(cond))[:, :, None]  # (B, T, 1, 6D)
        shift1, scale1, gate1, shift2, scale2, gate2 = mod.chunk(6, dim=-1)
        h = modulate(self.norm1(x), shift1, scale1).reshape(B, T * N, D)
        a, k, v = self.attn(h, cos, sin, mask, past_k, past_v, past_len)
        x = x + gate1 * a.view(B, T, N, D)
        x = x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))
        return apply_view_adapters(self.adapters, x, cond, view), k, v


class FactorisedBlock(nn.Module):
    """Spatial attention inside each frame, causal temporal attention per position across frames, then the MLP;
    each of the three residual branches with its own adaLN-Zero shift/scale/gate."""

    def __init__(self, cfg: DynamicsConfig):
        super().__init__()
        D = cfg.width
        self.cfg = cfg
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.spatial = Attention(cfg)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.temporal = Attention(cfg)
        self.norm3 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        hidden = int(cfg.mlp_ratio * D)
        self.mlp = nn.Sequential(nn.Linear(D, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, D))
        self.ada = nn.Linear(D, 9 * D)
        self.adapters = view_adapters(cfg)

    def forward(self, x, cond, cos, sin, mask, past_k=None, past_v=None, past_len=0, view=None):
        """x (B, T, N, D), cond (B, T, D), mask: the temporal one (B or 1, 1, T, past_len + T) or None, view (B,)
        long or None -> x (B, T, N, D), and the temporal attention's k, v (B, N*H, T, hd) after RoPE."""
        B, T, N, D = x.shape
        H, hd = self.cfg.heads, self.cfg.head_dim
        mod = self.ada(F.silu(cond))[:, :, None]  # (B, T, 1, 9D)
        shift1, scale1, gate1, shift2, scale2, gate2, shift3, scale3, gate3 = mod.chunk(9, dim=-1)
        h = modulate(self.norm1(x), shift1, scale1)
        att = self.spatial  # every frame on its own, all its tokens, no mask
        q, k, v = att.qkv(h).view(B * T, N, 3, H, hd).permute(2, 0, 3, 1, 4)  # each (B*T, H, N, hd)
        q, k = att.q_norm(q), att.k_norm(k)
        # torch's fused kernel is the faster one without gradients, the explicit one with (see softmax_attention)
        y = softmax_attention(q, k, v, None) if torch.is_grad_enabled() else F.scaled_dot_product_attention(q, k, v)
        x = x + gate1 * att.proj(y.transpose(1, 2).reshape(B, T, N, D))
        h = modulate(self.norm2(x), shift2, scale2)
        att = self.temporal
        qkv = att.qkv(h).view(B, T, N, 3, H, hd).permute(3, 0, 2, 4, 1, 5).reshape(3, B, N * H, T, hd)
        q = apply_rope(att.q_norm(qkv[0]), cos, sin, 1)  # positions batched as heads: (B, N*H, T, hd)
        k = apply_rope(att.k_norm(qkv[1]), cos, sin, 1)
        y, k, v = att.attend(q, k, qkv[2], mask, past_k, past_v, past_len, explicit=True)
        y = y.view(B, N, H, T, hd).permute(0, 3, 1, 2, 4).reshape(B, T, N, D)
        x = x + gate2 * att.proj(y)
        x = x + gate3 * self.mlp(modulate(self.norm3(x), shift3, scale3))
        return apply_view_adapters(self.adapters, x, cond, view), k, v


class NoiseEmbedding(nn.Module):
    """c_noise (scalar per frame) -> (D,) via fixed random Fourier features and an MLP (as in EDM's networks)."""

    def __init__(self, cfg: DynamicsConfig):
        super().__init__()
        self.register_buffer("freqs", torch.randn(cfg.noise_features // 2, generator=torch.Generator().manual_seed(0)))
        self.mlp = nn.Sequential(nn.Linear(cfg.noise_features, cfg.width), nn.SiLU(), nn.Linear(cfg.width, cfg.width))

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * c_noise.float()[..., None] * self.freqs.float()  # (B, T, F/2)
        return self.mlp(torch.cat([f.cos(), f.sin()], dim=-1).to(self.freqs.dtype))  # (B, T, D)


class Dynamics(nn.Module):
    """F_theta of EDM over a window of latent frames (see module docstring)."""

    STATS = ("prior_map",)
    """Buffers a bf16 runtime keeps in fp32."""

    def __init__(self, config: DynamicsConfig):
        super().__init__()
        self.config = cfg = config
        D = cfg.width
        self.patch_in = nn.Linear(cfg.patch_dim * (1 + cfg.prev_frame + cfg.memory), D)  # [frame, prev, memory]
        if cfg.prev_prior:  # kept fp32 by a bf16 runtime (STATS)
            self.register_buffer("prior_map", torch.eye(cfg.patch_dim))
        if cfg.prev_frame:
            self.prev_noise_emb = NoiseEmbedding(cfg)
            self.no_prev = nn.Parameter(torch.zeros(D))  # conditioning of a frame without a predecessor
        if cfg.memory:
            self.mem_noise_emb = NoiseEmbedding(cfg)  # the memory frame's noise level
            self.mem_gap_emb = nn.Embedding(MEMORY_GAPS + 1, D)  # forwards since it, or no memory frame
        self.pos = nn.Parameter(torch.randn(cfg.tokens_per_frame, D) * 0.02)  # learned spatial position
        self.noise_emb = NoiseEmbedding(cfg)
        self.action_emb = nn.Embedding(cfg.num_actions + 2, D)  # + START, NULL
        if cfg.views:
            self.view_emb = nn.Embedding(cfg.views + 1, D)  # + unknown
        block = FactorisedBlock if cfg.factorised else Block
        self.blocks = nn.ModuleList(block(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Linear(D, 2 * D)
        self.patch_out = nn.Linear(D, cfg.patch_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.action_emb.weight, std=0.02)
        if self.config.views:  # zero: a view-conditioned model starts as the same function of its other inputs
            nn.init.zeros_(self.view_emb.weight)
        if self.config.memory:  # zero as well: the memory input starts closed
            with torch.no_grad():
                self.patch_in.weight[:, -self.config.patch_dim:].zero_()
            nn.init.zeros_(self.mem_noise_emb.mlp[-1].weight)
            nn.init.zeros_(self.mem_noise_emb.mlp[-1].bias)
            nn.init.zeros_(self.mem_gap_emb.weight)
        for b in self.blocks:  # adaLN-Zero: every residual branch starts closed
            nn.init.zeros_(b.ada.weight)
            nn.init.zeros_(b.ada.bias)
            for adapter in (b.adapters or {}).values():
                nn.init.zeros_(adapter.ada.weight)
                nn.init.zeros_(adapter.ada.bias)
        for m in (self.ada_out, self.patch_out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, actions: torch.Tensor, positions: torch.Tensor,
                frame_valid: torch.Tensor | None = None,
                prev: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                view: torch.Tensor | None = None) -> torch.Tensor:
        """Run a window of T frames through the transformer under the frame-causal mask (training, recompute).

        x: network inputs (B, T, C, h, w) (already scaled by c_in); c_noise: (B, T); actions: (B, T) long
        conditioning actions (START/NULL ids allowed); positions: (B, T) absolute frame indices; frame_valid:
        optional (B, T) bool, False for padding frames that no real frame may attend to; prev: the frame before
        the window's first frame (prev_frame models), as (network input (B, C, h, w), c_noise (B,), present (B,)
        bool), or None for no predecessor; view: (B,) long view ids of the sequences (`DynamicsConfig.view_ids`),
        None for unknown (ignored by models without view conditioning). Returns F (B, T, C, h, w).
        """
        tok, cond, _ = self._trunk(x, c_noise, actions, positions, None, frame_valid, False, prev, view)
        return self._head(tok, cond, x.shape)

    def forward_cached(self, x: torch.Tensor, c_noise: torch.Tensor, actions: torch.Tensor, positions: torch.Tensor,
                       cache: KVCache, prev: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                       independent: bool = False,
                       memory: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Run T new frames that attend to the whole cache (and, frame-causally, to each other); the cache is
        read, not written. Arguments as in `forward`, prev being the cache's latest frame
        (`Denoiser.cache_prev`); independent: the T new frames do not attend to each other (the guided and
        unguided branches of one frame, batched along T); memory: every cached frame as the network sees it,
        (network input (B, S, C, h, w), c_noise (B, S)) (`Denoiser.cache_inputs`), needed by memory models. The
        view is each world's in the cache (`KVCache.views`). Returns F (B, T, C, h, w)."""
        tok, cond, _ = self._trunk(x, c_noise, actions, positions, cache, None, independent, prev, cache.views,
                                   memory)
        return self._head(tok, cond, x.shape)

    @torch.no_grad()
    def append(self, x: torch.Tensor, c_noise: torch.Tensor, actions: torch.Tensor, positions: torch.Tensor,
               cache: KVCache, latents: torch.Tensor, sigmas: torch.Tensor,
               prev: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
               memory: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """Store T new frames in the cache as context: run them as `forward_cached` does, without the output
        head, and write their keys/values into every world's ring buffer, with their noisy latents (B, T, C, h, w),
        noise levels sigmas (B, T) and poses kept for recomputes and memory lookups; the view is each world's in
        the cache."""
        poses = self.poses(actions, cache.latest_pose())
        _, _, new_kv = self._trunk(x, c_noise, actions, positions, cache, None, False, prev, cache.views, memory)
        self._write(cache, new_kv, latents, sigmas, actions, positions, poses)

    def _trunk(self, x, c_noise, actions, positions, cache: KVCache | None, frame_valid, independent: bool, prev,
               view: torch.Tensor | None, memory=None):
        """Embed the frames and run every block: -> tokens (B, T, N, D), conditioning (B, T, D), and each
        layer's new keys/values."""
        cfg = self.config
        B, T, C, h, w = x.shape
        N = cfg.tokens_per_frame
        x = x.to(self.pos.dtype)  # fp32, or bf16 for a model cast to bf16 for inference
        cond = self.noise_emb(c_noise) + self.action_emb(actions)  # (B, T, D)
        if cfg.views:
            if view is None:
                view = torch.full((B,), cfg.unknown_view, dtype=torch.long, device=x.device)
            elif view.shape[0] != B:  # a cache shared by repeated branches
                view = view.repeat(B // view.shape[0])
            cond = cond + self.view_emb(view)[:, None]  # (B, 1, D): one view per sequence
        if cfg.prev_frame:
            px, pc, has = self._predecessors(x, c_noise, prev, frame_valid, independent)
            parts = [x, px]
            cond = cond + torch.where(has[..., None], self.prev_noise_emb(pc), self.no_prev.to(cond.dtype))
        else:
            parts = [x]
        if cfg.memory:
            mx, mc, gap = self._memory(x, c_noise, actions, positions, cache, frame_valid, independent, memory)
            parts.append(mx)
            found = (gap < MEMORY_GAPS)[..., None].to(cond.dtype)
            cond = cond + self.mem_gap_emb(gap) + found * self.mem_noise_emb(mc)
        inp = torch.cat([patchify(p, cfg.patch_size) for p in parts], dim=-1)
        tok = self.patch_in(inp) + self.pos  # (B, T, N, D)
        cos, sin = rope_angles(positions, cfg.head_dim, cfg.rope_base)  # (B, 1, T, hd/2)
        if cfg.factorised:
            mask = self._temporal_mask(B, T, cache, frame_valid, x.device, independent)
            past_len = cache.slots if cache is not None else 0
        else:
            mask = self._mask(B, T, cache, frame_valid, x.device, independent)
            past_len = cache.slots * N if cache is not None else 0
        if cache is not None:
            cache_batch = cache.batch
            if cache_batch != B and B % cache_batch != 0:
                raise ValueError(f"batch {B} is not a multiple of the cache batch {cache_batch}")
            reps = B // cache_batch  # > 1 when guided branches share one cache
        new_kv = []
        for i, block in enumerate(self.blocks):
            past_k = past_v = None
            if cache is not None:
                past_k, past_v = cache.k[i], cache.v[i]
                if reps > 1:
                    past_k, past_v = past_k.repeat(reps, 1, 1, 1), past_v.repeat(reps, 1, 1, 1)
            tok, k, v = block(tok, cond, cos, sin, mask, past_k, past_v, past_len, view)
            new_kv.append((k, v))
        return tok, cond, new_kv

    def _head(self, tok: torch.Tensor, cond: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """Tokens (B, T, N, D) -> F (B, T, C, h, w) in fp32."""
        C, h, w = shape[-3:]
        shift, scale = self.ada_out(F.silu(cond))[:, :, None].chunk(2, dim=-1)  # (B, T, 1, D) each
        out = self.patch_out(modulate(self.norm_out(tok), shift, scale))  # (B, T, N, C*p*p)
        return unpatchify(out.float(), self.config.patch_size, C, h, w)  # (B, T, C, h, w)

    def poses(self, actions: torch.Tensor, base: torch.Tensor | None = None, independent: bool = False) -> torch.Tensor:
        """Dead-reckoned poses (B, T, 3) long (segment, heading in quarter turns, forwards) of frames conditioned on
        `actions` (B, T): base (B, 3) (the pose before them; zeros if None) plus each frame's action's step,
        accumulated along T, or each frame's own step alone when `independent` (branches of one frame). START and
        NULL begin a new segment; headings compare modulo four."""
        cfg = self.config
        step = torch.stack([(actions == cfg.start_action) | (actions == cfg.null_action),
                            actions == cfg.turn_right_action, actions == cfg.forward_action], dim=-1).long()
        step[..., 1] -= (actions == cfg.turn_left_action).long()
        if not independent:
            step = step.cumsum(dim=1)
        return step if base is None else base[:, None] + step

    def _memory(self, x, c_noise, actions, positions, cache, frame_valid, independent, memory):
        """Every new frame's memory frame (see the module docstring): its network input (B, T, C, h, w) (zeros
        where there is none), c_noise (B, T) and forwards-since id (B, T) long (MEMORY_GAPS where there is none).
        Candidates: the window's earlier frames (no cache), or the cached frames (`memory`, their network inputs)
        and the earlier new frames (unless `independent`)."""
        B, T = actions.shape
        dev = x.device
        positions = positions.long()
        if cache is None:
            pose = self.poses(actions)
            cand_pose, cand_time, cand_x, cand_c = pose, positions, x, c_noise
            cand_ok = (torch.ones(B, T, dtype=torch.bool, device=dev) if frame_valid is None
                       else frame_valid.bool())
        else:
            if memory is None:
                raise ValueError("a memory model over a cache needs the cached frames' inputs (memory=..., see "
                                 "Denoiser.cache_inputs)")
            reps = B // cache.batch
            rep = (lambda t: t.repeat(reps, *[1] * (t.dim() - 1))) if reps > 1 else (lambda t: t)  # noqa: E731
            pose = self.poses(actions, rep(cache.latest_pose()), independent)
            mem_x, mem_c = memory
            new_ok = torch.full((B, T), not independent, dtype=torch.bool, device=dev)
            cand_pose = torch.cat([rep(cache.poses), pose], dim=1)  # (B, S + T, 3)
            cand_time = torch.cat([rep(cache.times), positions], dim=1)
            cand_ok = torch.cat([rep(cache.valid), new_ok], dim=1)
            cand_x = torch.cat([rep(mem_x).to(x.dtype), x], dim=1)
            cand_c = torch.cat([rep(mem_c).to(c_noise.dtype), c_noise], dim=1)
        match = (cand_ok[:, None, :] & (cand_time[:, None, :] < positions[:, :, None])
                 & (cand_pose[:, None, :, 0] == pose[:, :, None, 0])
                 & ((cand_pose[:, None, :, 1] - pose[:, :, None, 1]) % 4 == 0))  # (B, T, K)
        idx = torch.where(match, cand_time[:, None, :], -1).argmax(dim=-1)  # the most recent match, (B, T)
        found = match.any(dim=-1)
        if self.config.memory_turns_only:
            found &= (actions == self.config.turn_left_action) | (actions == self.config.turn_right_action)
        b = torch.arange(B, device=dev)[:, None]
        gap = (pose[..., 2] - cand_pose[b, idx, 2]).clamp(0, MEMORY_GAPS - 1)
        gap = torch.where(found, gap, MEMORY_GAPS)
        mx = torch.where(found[..., None, None, None], cand_x[b, idx], torch.zeros((), dtype=x.dtype, device=dev))
        mc = torch.where(found, cand_c[b, idx], torch.zeros((), dtype=c_noise.dtype, device=dev))
        return mx, mc, gap

    def predecessors(self, x: torch.Tensor, sigma: torch.Tensor,
                     prev: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                     frame_valid: torch.Tensor | None = None, independent: bool = False):
        """Every frame's predecessor as it is: noisy latent (B, T, C, h, w) (zeros where none), its sigma (B, T) and
        presence (B, T) bool, for noisy latents x (B, T, C, h, w) at levels sigma (B, T); prev: the frame before the
        first, (latent (B, C, h, w), sigma (B,), present (B,) bool) (`Denoiser.cache_latest`), or None; the rest as
        in `forward` / `forward_cached`."""
        return self._predecessors(x, sigma, prev, frame_valid, independent)

    def prior_project(self, x: torch.Tensor) -> torch.Tensor:
        """Latents (B, T, C, h, w) with every token mapped by `prior_map` (`DynamicsConfig.prev_prior`), float32."""
        B, T, C, h, w = x.shape
        p = self.config.patch_size
        return unpatchify(patchify(x.float(), p) @ self.prior_map.float().T, p, C, h, w)

    def _predecessors(self, x, c_noise, prev, frame_valid, independent):
        """Inputs, c_noise and presence (B, T) of every new frame's predecessor (see `forward`, `forward_cached`)."""
        B, T = x.shape[:2]
        if prev is None:
            p_x = torch.zeros_like(x[:, 0])
            p_c = torch.zeros_like(c_noise[:, 0])
            p_has = torch.zeros(B, dtype=torch.bool, device=x.device)
        else:
            p_x, p_c, p_has = prev
            if p_x.shape[0] != B:  # a cache shared by repeated branches
                reps = B // p_x.shape[0]
                p_x, p_c, p_has = p_x.repeat(reps, 1, 1, 1), p_c.repeat(reps), p_has.repeat(reps)
            p_x = torch.where(p_has[:, None, None, None], p_x.to(x.dtype), torch.zeros_like(p_x, dtype=x.dtype))
        if independent or T == 1:
            rep = lambda t: t[:, None].expand(B, T, *t.shape[1:])  # noqa: E731
            return rep(p_x), rep(p_c.to(c_noise.dtype)), rep(p_has)
        has = torch.cat([p_has[:, None], torch.ones(B, T - 1, dtype=torch.bool, device=x.device)], dim=1)
        if frame_valid is not None:
            has[:, 1:] &= frame_valid[:, :-1]
        px = torch.cat([p_x[:, None], x[:, :-1]], dim=1)
        px = torch.where(has[..., None, None, None], px, torch.zeros_like(px))
        pc = torch.cat([p_c[:, None].to(c_noise.dtype), c_noise[:, :-1]], dim=1)
        return px, pc, has

    def _mask(self, B, T, cache, frame_valid, device, independent=False) -> torch.Tensor | None:
        N = self.config.tokens_per_frame
        causal = frame_causal_mask(T, N, device)  # (T*N, T*N)
        if independent:
            causal = torch.eye(T, dtype=torch.bool, device=device).repeat_interleave(N, 0).repeat_interleave(N, 1)
        if T == 1:
            causal = None
        if frame_valid is not None:
            # padding frames: no real frame attends to them; they attend only to themselves (no empty rows)
            key_ok = frame_valid.repeat_interleave(N, dim=1)  # (B, T*N)
            own = torch.eye(T, dtype=torch.bool, device=device).repeat_interleave(N, 0).repeat_interleave(N, 1)
            m = key_ok[:, None, :] | own[None]
            causal = m if causal is None else (causal[None] & m)
            causal = causal[:, None]  # (B, 1, T*N, T*N)
        if cache is None:
            return causal
        all_valid = bool(cache.valid.all())
        if all_valid and causal is None:
            return None
        S = cache.slots
        past_ok = cache.valid.repeat_interleave(N, dim=1)[:, None, None, :]  # (B, 1, 1, S*N)
        if cache.batch != B:
            past_ok = past_ok.repeat(B // cache.batch, 1, 1, 1)
        past_ok = past_ok.expand(B, 1, T * N, S * N)
        new = torch.ones(T * N, T * N, dtype=torch.bool, device=device) if causal is None else causal
        new = new.expand(B, 1, T * N, T * N) if new.dim() == 2 else new
        return torch.cat([past_ok, new], dim=-1)  # (B, 1, T*N, S*N + T*N)

    def _temporal_mask(self, B, T, cache, frame_valid, device, independent=False) -> torch.Tensor | None:
        """The factorised layout's temporal mask, (B or 1, 1, T, S + T) with a cache of S slots, else (B or 1, 1,
        T, T); True where frame t may attend to a frame (the same for every position); None when all may."""
        causal = torch.ones(T, T, dtype=torch.bool, device=device).tril()
        if independent:
            causal = torch.eye(T, dtype=torch.bool, device=device)
        if T == 1:
            causal = None
        if frame_valid is not None:  # padding frames: no real frame attends to them; they attend to themselves
            own = torch.eye(T, dtype=torch.bool, device=device)
            m = frame_valid[:, None, :] | own[None]  # (B, T, T)
            causal = m if causal is None else causal[None] & m
            causal = causal[:, None]  # (B, 1, T, T)
        if cache is None:
            return causal if causal is None or causal.dim() == 4 else causal[None, None]
        if bool(cache.valid.all()) and causal is None:
            return None
        past_ok = cache.valid[:, None, None, :]  # (B_cache, 1, 1, S)
        if cache.batch != B:
            past_ok = past_ok.repeat(B // cache.batch, 1, 1, 1)
        past_ok = past_ok.expand(B, 1, T, cache.slots)
        new = torch.ones(T, T, dtype=torch.bool, device=device) if causal is None else causal
        new = new.expand(B, 1, T, T) if new.dim() == 2 else new
        return torch.cat([past_ok, new], dim=-1)  # (B, 1, T, S + T)

    @torch.no_grad()
    def _write(self, cache: KVCache, new_kv, latents, sigmas, actions, positions, poses) -> None:
        """Append T frames to the ring buffer of every world (overwriting the oldest slots when full)."""
        S = cache.slots
        B, T = latents.shape[:2]
        if B != cache.batch:
            raise ValueError(f"cannot write a batch of {B} into a cache of {cache.batch} worlds")
        if T > S:
            raise ValueError(f"cannot write {T} frames into a cache of {S} slots")
        dev = latents.device
        slots = (cache.next_slot[:, None] + torch.arange(T, device=dev)) % S  # (B, T)
        # a frame slot's entries along the token axis: its N tokens (frame-causal), or 1 (factorised, whose positions
        # lie on the head axis, see KVCache)
        n = 1 if self.config.factorised else self.config.tokens_per_frame
        idx = (slots[:, :, None] * n + torch.arange(n, device=dev)).reshape(B, T * n)  # (B, T*n)
        b_idx = torch.arange(B, device=dev)[:, None]
        for (k, v), ck, cv in zip(new_kv, cache.k, cache.v):  # k, v (B, H', T*n, hd)
            ck[b_idx, :, idx] = k.permute(0, 2, 1, 3).to(ck.dtype)  # (B, T*n, H', hd)
            cv[b_idx, :, idx] = v.permute(0, 2, 1, 3).to(cv.dtype)
        cache.latents[b_idx, slots] = latents.float()
        cache.sigmas[b_idx, slots] = sigmas.float()
        cache.actions[b_idx, slots] = actions
        cache.times[b_idx, slots] = positions.long()
        cache.poses[b_idx, slots] = poses
        cache.valid[b_idx, slots] = True
        cache.next_slot.copy_((cache.next_slot + T) % S)
