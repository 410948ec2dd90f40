"""``genie-train dynamics`` with only the short episodes of some views padded into training (experiments/LOG.md entry
20): a diagnostic of which padded episodes break the top-down view. The padded windows of the other views are
never drawn (their draw weight is zero); everything else is ``genie-train dynamics`` with --pad-short-episodes.

    python -m experiments.pad_views --pad-views first_person -- dynamics --data ... --pad-short-episodes ...
"""
from __future__ import annotations

import argparse

import numpy as np

import world_model.train_dynamics as train_dynamics
from world_model.train_cli import main as train_main


def only_views(open_windows, views: tuple[str, ...]):
    """`open_windows` whose padded windows of episodes outside `views` are never drawn."""
    def wrapped(*args, **kwargs):
        data = open_windows(*args, **kwargs)
        if data._draw_p is not None:
            keep = ~data.window_padded | np.isin(data.episodes.views[data.window_episode], views)
            p = np.where(keep, data._draw_p, 0.0)
            data._draw_p = p / p.sum()
            print(f"[pad_views] padded windows drawn only for {', '.join(views)}: "
                  f"{int((data.window_padded & keep).sum())} of {int(data.window_padded.sum())}, "
                  f"{float(data._draw_p[data.window_padded].sum()):.3f} of the draws")
        return data
    return wrapped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pad-views", nargs="+", required=True, choices=("first_person", "top_down"))
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="genie-train's arguments, after --")
    a = parser.parse_args(argv)
    rest = a.train_args[1:] if a.train_args[:1] == ["--"] else a.train_args
    train_dynamics.open_windows = only_views(train_dynamics.open_windows, tuple(a.pad_views))
    return train_main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
