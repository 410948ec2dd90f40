"""torchrun with 2 CPU processes (gloo): parameters stay identical across ranks, rank 0 alone writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

from world_model.train_autoencoder import AutoencoderArgs
from world_model.training import train

WORKER = textwrap.dedent('''
    import sys
    from dataclasses import dataclass

    import numpy as np
    from safetensors.torch import save_file

    from world_model.train_dynamics import DynamicsArgs


    @dataclass
    class Batch:
        frames: np.ndarray
        actions: np.ndarray


    class RandomWindows:
        def __init__(self, window):
            self.window = window

        def sample_batch(self, batch_size, generator):
            shape = (batch_size, self.window, 64, 64, 3)
            return Batch(generator.integers(0, 256, shape, dtype=np.uint8),
                         generator.integers(0, 7, (batch_size, self.window)))


    out, autoencoder, data = sys.argv[1], sys.argv[2], sys.argv[3:]
    args = DynamicsArgs(data=tuple(data), out=out, preset="tiny", steps=3, batch_size=2, window=3,
                     autoencoder=autoencoder, warmup=1, log_every=1, checkpoint_every=2, threads=1)
    # with recording folders: the real data path (latent cache encoded by both ranks); else synthetic windows
    trainer = args.trainer(None if data else RandomWindows(args.window))
    trainer.run()
    state = {k: v.contiguous() for k, v in trainer.dyn.state_dict().items()}
    save_file(state, f"{out}/params-rank{trainer.rt.rank}.safetensors")
''')


def write_recording(folder: Path) -> Path:
    import numpy as np

    from world_model.shards import Episode, ShardMeta, write_shard

    ACTION_MEANINGS = ("stay", "up", "down", "left", "right", "jump", "use")  # as the recordings name them

    rng = np.random.default_rng(0)
    folder.mkdir()
    episodes = []
    for _ in range(3):
        n = 9
        actions = rng.integers(0, 7, n).astype(np.int16)
        actions[-1] = -1
        episodes.append(Episode(frames=rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8), actions=actions,
                                rewards=np.zeros(n, np.float32), success=np.zeros(n, bool), split="train"))
    write_shard(folder / "shard_000000.npz", episodes,
                ShardMeta(env_id="test/Random-v0", frame_shape=(64, 64, 3), action_meanings=ACTION_MEANINGS))
    return folder


def test_torchrun_two_cpu_processes(tmp_path: Path):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ae = tmp_path / "ae"
        train(AutoencoderArgs(data=(), out=str(ae), preset="tiny", steps=1, batch_size=2, threads=1),
              data=_frames())
    finally:
        torch.set_num_threads(n)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    run = tmp_path / "dyn"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(run), str(ae), str(write_recording(tmp_path / "rec"))], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    p0 = load_file(str(run / "params-rank0.safetensors"))
    p1 = load_file(str(run / "params-rank1.safetensors"))
    assert p0.keys() == p1.keys()
    for k in p0:
        assert torch.equal(p0[k], p1[k]), k
    assert sorted(p.name for p in run.glob("ckpt-*")) == ["ckpt-00000002", "ckpt-00000003"]
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # one writer: no duplicated lines
    assert json.loads((run / "run.json").read_text())["world_size"] == 2
    assert (run / "latents.safetensors").is_file() and not list(run.glob("latents.part*"))
    assert load_file(str(run / "latents.safetensors"))["latents"].shape == (27, 4, 16, 16)
    # the checkpoint's model is the EMA of the weights; the trained weights (rank 0's) ride in the optimizer file
    opt = load_file(str(run / "ckpt-00000003" / "optimizer.safetensors"))
    assert torch.equal(opt["extra.train_dynamics.pos"], p0["pos"])
    ckpt = load_file(str(run / "ckpt-00000003" / "model.safetensors"))
    assert ckpt["dynamics.pos"].shape == p0["pos"].shape and not torch.equal(ckpt["dynamics.pos"], p0["pos"])


def _frames():
    import numpy as np

    class OneFrame:
        def sample_batch(self, batch_size, generator):
            class B:
                frames = generator.integers(0, 256, (batch_size, 1, 64, 64, 3), dtype=np.uint8)
                actions = np.zeros((batch_size, 1), np.int64)
            return B

    return OneFrame()
