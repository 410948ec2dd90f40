"""genie-play: headless runs write an mp4 of the right length and show a progress bar; the window loop reacts to keys
and the mouse; Gymnasium's RecordVideo records GenieWorld."""

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from PIL import Image

from genie_env.babyai3d import BabyAI3DEnv
from genie_env.play import PlayArgs, VideoRecorder, main, make_env, play_window
from world_model.inference import PRESETS, WorldModel


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("play") / "tiny"
    torch.manual_seed(0)
    from dataclasses import replace

    from genie_env.babyai3d import ACTION_MEANINGS

    WorldModel.from_config(replace(PRESETS["tiny"], action_meanings=ACTION_MEANINGS)).save(path)  # a BabyAI3D model
    return path


def frame_count(path):
    reader = imageio.get_reader(path)
    n, shape = reader.count_frames(), reader.get_data(0).shape
    reader.close()
    return n, shape


def test_headless_records_one_frame_per_step(checkpoint, tmp_path, capsys):
    out = tmp_path / "play.mp4"
    assert main(["--headless", "--steps", "9", "--actions", "wwaddwe", "--record", str(out), "--model",
                 str(checkpoint), "--seed", "3", "--num-steps", "2", "--guidance", "1.5"]) == 0
    assert frame_count(out) == (10, (256, 256, 3))  # the prompt frame + 9 generated frames, upscaled 4x
    out, err = capsys.readouterr()
    assert "steps=9" in out
    assert "genie-play: 100%" in err and "9/9" in err  # the progress bar
    assert main(["--headless", "--steps", "2", "--model", str(checkpoint), "--quiet"]) == 0
    assert "genie-play" not in capsys.readouterr().err
    assert main(["--headless", "--steps", "2", "--model", str(checkpoint), "--quiet", "--look-around"]) == 0
    assert "steps=2" in capsys.readouterr().out
    top = tmp_path / "top.mp4"
    assert main(["--headless", "--steps", "2", "--model", str(checkpoint), "--quiet", "--view", "top_down",
                 "--record", str(top), "--seed", "3"]) == 0
    env = make_env(PlayArgs(model=str(checkpoint), view="top_down"))
    _, info = env.reset(seed=3)
    env.close()
    first = imageio.get_reader(top).get_data(0)[::4, ::4].astype(int)  # the prompt frame, as recorded (lossy)
    seen = {view: np.abs(first - BabyAI3DEnv(view=view, worlds="test").reset(
        options={"level_seed": info["level_seed"]})[0]).mean() for view in ("top_down", "first_person")}
    assert info["view"] == "top_down" and seen["top_down"] < 5 < seen["first_person"], seen


def test_headless_prompt_image_and_text(checkpoint, tmp_path, capsys):
    image = tmp_path / "sketch.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "image.mp4"
    assert main(["--headless", "--steps", "3", "--prompt", str(image), "--record", str(out), "--model",
                 str(checkpoint), "--scale", "2"]) == 0
    assert frame_count(out) == (4, (128, 128, 3))
    assert main(["--headless", "--steps", "2", "--text", "a red door", "--model", str(checkpoint)]) == 0
    assert "mission=open the red door" in capsys.readouterr().out


def test_errors(checkpoint, tmp_path, capsys):
    assert main(["--headless", "--steps", "1", "--model", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["--headless", "--prompt", str(tmp_path / "missing.png"), "--model", str(checkpoint)]) == 2
    assert main(["--headless", "--text", "a red dragon", "--model", str(checkpoint)]) == 2
    assert "unknown word" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--headless", "--actions", "wxz", "--model", str(checkpoint)])
    with pytest.raises(SystemExit):
        main(["--prompt", "a.png", "--text", "a door"])
    with pytest.raises(SystemExit):
        main(["--view", "overhead"])
    with pytest.raises(SystemExit):
        main(["--text", "a door", "--view", "top_down"])


def test_window_loop_with_keys_and_mouse(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    import pygame

    script = [
        [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_w)],
        [pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=(0, 0))],
        [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_r)],
        [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_e), pygame.event.Event(pygame.KEYDOWN, key=pygame.K_x)],
        [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE)],
    ]
    args = PlayArgs(model=str(checkpoint), record=str(tmp_path / "window.mp4"), scale=2)
    env = make_env(args)
    recorder = VideoRecorder(args.record, args.fps, args.scale)
    summary = play_window(env, args, recorder, next_events=lambda: script.pop(0) if script else [])
    recorder.close()
    assert summary["steps"] == 3 and summary["restarts"] == 1  # w, click, e (x is not a control)
    assert frame_count(tmp_path / "window.mp4")[0] == 1 + 2 + 1 + 1  # start, 2 steps, restart, 1 step


def test_gymnasium_record_video(checkpoint, tmp_path):
    pytest.importorskip("moviepy", reason="RecordVideo needs moviepy: pip install genie-env[video]")
    import gymnasium as gym
    from gymnasium.wrappers import RecordVideo

    from genie_env import GENIE_WORLD_ID

    env = RecordVideo(gym.make(GENIE_WORLD_ID, model=str(checkpoint), render_mode="rgb_array"), str(tmp_path / "videos"),
                      episode_trigger=lambda episode: True, disable_logger=True)
    env.reset(seed=0)
    for action in (3, 1, 3, 6):
        env.step(action)
    env.close()
    (video,) = (tmp_path / "videos").glob("*.mp4")
    assert frame_count(video) == (5, (64, 64, 3))  # the first frame and one per step
