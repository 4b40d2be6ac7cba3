"""Generate a small dataset in the Charades_v1 on-disk layout, for tests and the demo config.

Each video shows a few actions with random, often overlapping time spans; action
``k`` is a square of its own colour in its own place, drawn on exactly the
frames its span covers (frame ``i`` shows time ``i / fps``), so the labels of a
clip are visible in it. Only the first ``--num-actions`` of the 157 Charades
classes occur; the class file lists all 157, as the real one.

Layout written under ``--out-dir`` (default ``data/charades_demo``)::

    Charades_v1_480/<id>.mp4
    Charades_v1_train.csv            # Charades' columns; actions "c001 0.50 2.25;c003 ..."
    Charades_v1_test.csv
    Charades_v1_classes.txt          # "c000 demo action 0" ... "c156 demo action 156"

The output is a deterministic function of the arguments.
"""
import argparse
import csv
import os
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from make_demo_dataset import PALETTE, write_video  # noqa: E402

NUM_CLASSES = 157
CSV_COLUMNS = ('id', 'subject', 'scene', 'quality', 'relevance', 'verified', 'script',
               'objects', 'descriptions', 'actions', 'length')
SPLITS = ('train', 'test')
SIZE = 32
SQUARE = 12
# Top-left corners of the squares of actions 0..3 (the four quadrants' insides).
PLACES = ((2, 2), (2, 18), (18, 2), (18, 18))


def class_lines():
    return [f'c{label:03d} demo action {label}\n' for label in range(NUM_CLASSES)]


def random_actions(rng, num_actions, duration):
    """1 to 3 distinct actions, each with a random span inside ``[0, duration]`` (two decimals)."""
    count = int(rng.integers(1, min(3, num_actions) + 1))
    labels = rng.choice(num_actions, size=count, replace=False)
    actions = []
    for label in sorted(labels.tolist()):
        start, end = sorted(np.round(rng.uniform(0, duration, size=2), 2).tolist())
        actions.append((label, start, end))
    return actions


def render(actions, num_frames, fps):
    """BGR frames showing each action's square on the frames its span covers."""
    colours = list(PALETTE.values())
    frames = np.zeros((num_frames, SIZE, SIZE, 3), np.uint8)
    times = np.arange(num_frames) / fps
    for label, start, end in actions:
        top, left = PLACES[label]
        on = (times >= start) & (times <= end)
        frames[on, top:top + SQUARE, left:left + SQUARE] = colours[label]
    return list(frames)


def make_charades_demo(out_dir, num_train=16, num_test=8, seed=0, num_frames=40, fps=8,
                       num_actions=4):
    """Write the dataset; returns ``{'train': csv, 'test': csv, 'classes': txt, 'videos': dir}``."""
    if not 1 <= num_actions <= len(PLACES):
        raise ValueError(f'num_actions must be in 1..{len(PLACES)}, got {num_actions}')
    video_dir = osp.join(out_dir, 'Charades_v1_480')
    os.makedirs(video_dir, exist_ok=True)
    paths = dict(videos=video_dir, classes=osp.join(out_dir, 'Charades_v1_classes.txt'))
    with open(paths['classes'], 'w') as handle:
        handle.writelines(class_lines())
    duration = (num_frames - 1) / fps
    for split, count, split_seed in zip(SPLITS, (num_train, num_test),
                                        np.random.SeedSequence(seed).spawn(len(SPLITS))):
        rng = np.random.default_rng(split_seed)
        rows = []
        for index in range(count):
            video_id = f'{split[:2].upper()}{index:03d}'
            actions = random_actions(rng, num_actions, duration)
            write_video(osp.join(video_dir, f'{video_id}.mp4'), render(actions, num_frames, fps),
                        fps=fps)
            rows.append(dict.fromkeys(CSV_COLUMNS, '') | dict(
                id=video_id, actions=';'.join(f'c{label:03d} {start:.2f} {end:.2f}'
                                              for label, start, end in actions),
                length=f'{num_frames / fps:.2f}'))
        paths[split] = osp.join(out_dir, f'Charades_v1_{split}.csv')
        with open(paths[split], 'w', newline='') as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return paths


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out-dir', default='data/charades_demo', help='dataset root')
    parser.add_argument('--num-train', type=int, default=16, help='training videos')
    parser.add_argument('--num-test', type=int, default=8, help='test videos')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument('--num-frames', type=int, default=40, help='frames per video')
    parser.add_argument('--fps', type=int, default=8, help='frames per second')
    parser.add_argument('--num-actions', type=int, default=4,
                        help=f'classes that occur (1..{len(PLACES)})')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for name in ('num_train', 'num_test', 'num_frames', 'fps'):
        if getattr(args, name) < 1:
            sys.exit(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    try:
        paths = make_charades_demo(args.out_dir, args.num_train, args.num_test, args.seed,
                                   args.num_frames, args.fps, args.num_actions)
    except ValueError as error:
        sys.exit(f'--num-actions: {error}')
    print(f'Charades-layout demo written to {args.out_dir}: {args.num_train} train / '
          f'{args.num_test} test videos; annotations {paths["train"]}, {paths["test"]}')


if __name__ == '__main__':
    main()
