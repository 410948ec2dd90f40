"""Checkpoints: a folder with `config.json` + `model.safetensors`. Nothing is ever unpickled.

Every checkpoint of the project (world model, autoencoder, success judge, BC and PPO agents) is such a folder whose
JSON file names its ``format`` and ``format_version``; :func:`read_config` reads and checks any of them,
:func:`read_tensors` / :func:`load_into` its weights, and :func:`write_folder_atomic` / :func:`write_json` write them
(:func:`write_text` is the atomic file write under write_json, for any text file).

Inference checkpoint (format "genie-world-model", what `WorldModel.load` reads):

    CKPT/config.json        {"format": "genie-world-model", "format_version": 1, "autoencoder": {...},
                             "dynamics": {...}, "diffusion": {...}, "sampler": {...}, "action_meanings": [...],
                             "latent_shift": [...], "latent_scale": [...], "training": {...}}
    CKPT/model.safetensors  "autoencoder.*" and "dynamics.*" tensors (may be stored fp16/bf16; loaded as fp32)

Autoencoder checkpoint (format "genie-autoencoder"): the same with only the "autoencoder" section and tensors.

Training checkpoint (inside a run directory, `RUN/ckpt-00001000/`): the files above plus
`trainer_state.json` (step, RNG states, optimizer hyper-parameters and an index of its tensors) and
`optimizer.safetensors` (the optimizer state tensors, flattened as "state.{param_index}.{name}").

Writes are atomic: a folder is written under a temporary name and renamed into place with os.replace, so a
killed process leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT_WORLD_MODEL = "genie-world-model"
FORMAT_AUTOENCODER = "genie-autoencoder"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_STATE_FILE = "trainer_state.json"
CKPT_PREFIX = "ckpt-"
#: The command that writes world-model checkpoints, named in read_config's errors.
WORLD_MODEL_WRITER = "`genie-train export --out FOLDER`"


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, corrupt, of another format/version, or does not fit the model."""


# ---------------------------------------------------------------------------------------------- writing


def write_folder_atomic(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp_folder) then move tmp_folder to `folder` atomically (replacing an existing one)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    write(tmp)
    if folder.exists():
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old)
    else:
        os.replace(tmp, folder)
    return folder


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` atomically (a temp file in the same folder renamed over it; parent folders made), so
    a killed process leaves the old file or the new one, never half of one; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2, default: Callable | None = None) -> Path:
    """Write `obj` as JSON to `path` atomically (:func:`write_text`); returns the path.

    indent: JSON indentation; default: json.dumps' hook for objects JSON does not know (e.g. numpy scalars).
    """
    return write_text(path, json.dumps(obj, indent=indent, default=default) + "\n")


def write_model_files(folder: Path, config: dict, tensors: dict[str, torch.Tensor], dtype=None) -> None:
    """Write config.json and model.safetensors into an (already created) folder."""
    out = {}
    for k, t in tensors.items():
        t = t.detach().cpu()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[k] = t.contiguous()
    metadata = {"format": config.get("format", ""), "format_version": str(config.get("format_version", FORMAT_VERSION))}
    save_file(out, str(folder / MODEL_FILE), metadata=metadata)
    write_json(folder / CONFIG_FILE, config)


def save_model(folder: str | Path, config: dict, tensors: dict[str, torch.Tensor], dtype=None) -> Path:
    """Atomically write a checkpoint folder: `config` (with its "format" and "format_version") as config.json and
    `tensors` as model.safetensors (floating tensors cast to `dtype` when given)."""
    return write_folder_atomic(folder, lambda tmp: write_model_files(tmp, config, tensors, dtype))


def prefixed(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


# ---------------------------------------------------------------------------------------------- reading


def read_config(folder: str | Path, formats: str | tuple[str, ...] = (FORMAT_WORLD_MODEL,),
                version: int = FORMAT_VERSION, filename: str = CONFIG_FILE,
                written_by: str = WORLD_MODEL_WRITER) -> dict:
    """Read and check the JSON file that describes a checkpoint folder; returns it as a dict.

    formats: the accepted values of its "format"; version: the "format_version" this code reads (an older or newer
    one is refused: nothing is converted silently); filename: the JSON file (config.json, or agent.json for PPO
    agents); written_by: the command that writes such folders, named in the errors so they say what to do.
    Raises CheckpointError when the folder or file is missing, the JSON is invalid, or the format or version differ.
    """
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {str(folder)!r} does not exist; pass a folder written by "
                              f"{written_by}")
    path = folder / filename
    if not path.is_file():
        hint = (f" (it is a training run directory: pass one of its {CKPT_PREFIX}* folders, or the run directory to "
                "a loader that resolves the latest checkpoint)" if run_checkpoints(folder) else "")
        raise CheckpointError(f"{str(path)!r} is missing: {str(folder)!r} is not a checkpoint folder{hint}; pass a "
                              f"folder written by {written_by}")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{str(path)!r} is not valid JSON ({e}); the checkpoint is corrupt: write it again with "
                              f"{written_by}") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{str(path)!r} must hold a JSON object; write the checkpoint again with {written_by}")
    fmt, found = config.get("format"), config.get("format_version")
    if fmt not in formats:
        expected = f"not {formats[0]!r}" if len(formats) == 1 else f"expected one of {formats}"
        raise CheckpointError(f"{str(path)!r} has format {fmt!r}, {expected}: pass a folder written by {written_by}")
    if found != version:
        raise CheckpointError(f"{str(path)!r} has format_version {found!r}; this code reads version {version}: "
                              f"upgrade genie-env or write the checkpoint again with {written_by}")
    return config


def read_section(config: dict, key: str | None, parse: Callable[[Any], Any], what: str, where: str | Path) -> Any:
    """parse(config[key]) (e.g. a dataclass's from_dict; key None: the whole config), with a CheckpointError that
    names `what` and `where` when the section is absent or does not fit."""
    try:
        return parse(config if key is None else config[key])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{str(where)!r} does not describe a {what} ({type(e).__name__}: {e}); was it "
                              "edited?") from e


def read_tensors(folder: str | Path, filename: str = MODEL_FILE) -> dict[str, torch.Tensor]:
    """Load a safetensors file of a checkpoint folder, floating tensors converted to fp32."""
    path = Path(folder) / filename
    if not path.is_file():
        raise CheckpointError(f"{str(path)!r} is missing; the checkpoint is incomplete, re-export or re-train it")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r} is not a readable safetensors file ({e}); the checkpoint is corrupt") from e
    return {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}


def sub_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def load_into(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """load_state_dict(strict=True), with a CheckpointError that says what does not fit."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        lines = []
        if missing:
            lines.append(f"missing {len(missing)} tensors (e.g. {missing[:3]})")
        if unexpected:
            lines.append(f"unexpected {len(unexpected)} tensors (e.g. {unexpected[:3]})")
        if wrong:
            lines.append(f"shape mismatch in {len(wrong)} tensors (e.g. {wrong[:3]})")
        raise CheckpointError(f"the {what} weights do not fit the {what} built from config.json: "
                              + "; ".join(lines) + ". Was this checkpoint trained with a different preset, or "
                              "was config.json edited?")
    module.load_state_dict(state, strict=True)


# ---------------------------------------------------------------------------------------------- training


def checkpoint_name(step: int) -> str:
    return f"{CKPT_PREFIX}{step:08d}"


def run_checkpoints(run_dir: str | Path) -> list[Path]:
    """The complete `ckpt-*` folders of a run directory, oldest first ([] if none)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(p for p in run_dir.iterdir() if p.is_dir() and p.name.startswith(CKPT_PREFIX)
                  and p.name[len(CKPT_PREFIX):].isdigit())


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete `ckpt-*` folder of a run directory, or None."""
    found = run_checkpoints(run_dir)
    return found[-1] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or a run directory -> its latest checkpoint folder."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        if not path.exists():
            raise CheckpointError(f"{str(path)!r} does not exist; pass a checkpoint folder or a training run directory")
        raise CheckpointError(f"{str(path)!r} holds no {CONFIG_FILE} and no {CKPT_PREFIX}* checkpoint; did its "
                              "training run save a checkpoint yet?")
    return latest


def flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """optimizer.state_dict() -> (tensors for safetensors, JSON index)."""
    sd = optimizer.state_dict()
    tensors, index = {}, {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        entry = {}
        for name, val in st.items():
            if torch.is_tensor(val):
                key = f"state.{pid}.{name}"
                tensors[key] = val.detach().cpu().contiguous()
                entry[name] = {"tensor": key}
            else:
                entry[name] = {"value": val}
        index["state"][str(pid)] = entry
    return tensors, index


def unflatten_optimizer(tensors: dict[str, torch.Tensor], index: dict) -> dict:
    state = {}
    for pid, entry in index["state"].items():
        state[int(pid)] = {name: (tensors[e["tensor"]] if "tensor" in e else e["value"]) for name, e in entry.items()}
    groups = []
    for g in index["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    return {"state": state, "param_groups": groups}


def save_training_checkpoint(
    run_dir: str | Path,
    step: int,
    config: dict,
    model_tensors: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    trainer_state: dict,
    extra_tensors: dict[str, torch.Tensor] | None = None,
    keep: int = 2,
) -> Path:
    """Atomically write RUN/ckpt-{step}/ (model + optimizer + trainer state) and prune to the newest `keep`."""
    run_dir = Path(run_dir)
    opt_tensors, opt_index = flatten_optimizer(optimizer)
    if extra_tensors:
        opt_tensors.update({f"extra.{k}": v.detach().cpu().contiguous() for k, v in extra_tensors.items()})

    def write(tmp: Path) -> None:
        write_model_files(tmp, config, model_tensors)
        save_file(opt_tensors, str(tmp / OPTIMIZER_FILE))
        write_json(tmp / TRAINER_STATE_FILE, {**trainer_state, "step": step, "optimizer": opt_index})

    path = write_folder_atomic(run_dir / checkpoint_name(step), write)
    old = sorted(p for p in run_dir.iterdir() if p.is_dir() and p.name.startswith(CKPT_PREFIX))[:-keep]
    for p in old:
        shutil.rmtree(p)
    return path


def load_training_state(folder: Path) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    """-> (trainer_state json, optimizer state_dict, extra tensors) of a training checkpoint folder."""
    path = folder / TRAINER_STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise CheckpointError(f"{str(path)!r} is missing: {str(folder)!r} is not a training checkpoint") from e
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{str(path)!r} is corrupt ({e}); delete {str(folder)!r} to resume from the one before") from e
    path = folder / OPTIMIZER_FILE
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{str(path)!r} is unreadable ({e}); delete {str(folder)!r} to resume from the one before") from e
    extra = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    return state, unflatten_optimizer(tensors, state["optimizer"]), extra
