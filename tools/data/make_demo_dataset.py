"""Generate nlnet's demo video dataset in Kinetics' on-disk layout.

The task is a delayed match-to-sample game whose answer needs a relation
between two frames far apart in time:

* cue (the first ``--cue-frames`` frames): one square of colour X, anywhere;
* gap (the middle frames): a grey distractor square jumping around;
* probe (the last ``--probe-frames`` frames): a ``grid x grid`` board with one
  square per cell, all of different colours, one of them X.

The label is the board cell holding colour X. A single frame never tells it:
the probe frame does not know X and the cue frame does not show the board. A
C2D network classifies the average of per-frame features, which is blind to
such pairings between frames (every colour is equally likely to be the cue, so
any per-frame feature is as likely to come with each cell), and stays near
chance. A non-local block compares every position with every other across
space-time, so it can find the board square that looks like the cue.

Layout written under ``--out-dir`` (default ``data/demo``)::

    videos_train/<class>/train_00000.mp4 ...
    videos_val/<class>/val_00000.mp4 ...
    demo_train_list_videos.txt     # "<class>/train_00000.mp4 <label>" per line
    demo_val_list_videos.txt
    demo_classes.txt               # class names, line i is label i
    demo_train_layout.json         # per video: where the cue and the board squares are
    demo_val_layout.json

Videos are MPEG-4 Part 2 ('mp4v') files written by OpenCV; the output is a
deterministic function of the arguments (the same seed gives the same bytes).
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys

import cv2
import numpy as np

# BGR, as OpenCV writes them; pairwise far apart so that codec noise never
# turns one into another.
PALETTE = {
    'red': (0, 0, 255),
    'green': (0, 255, 0),
    'blue': (255, 0, 0),
    'yellow': (0, 255, 255),
    'magenta': (255, 0, 255),
    'cyan': (255, 255, 0),
}
DISTRACTOR = (128, 128, 128)
CELL_NAMES = {
    2: ['top_left', 'top_right', 'bottom_left', 'bottom_right'],
    3: ['top_left', 'top', 'top_right', 'left', 'centre', 'right', 'bottom_left', 'bottom',
        'bottom_right'],
}
SPLITS = ('train', 'val')


def class_names(grid):
    """Label ``i`` is the name of the ``i``-th cell in row-major order."""
    return [f'cue_at_{name}' for name in CELL_NAMES[grid]]


class DemoVideoSpec:
    """Geometry and timing of one demo video.

    Args:
        grid (int): the probe board has ``grid x grid`` cells (2 or 3).
        cell (int): cell size in pixels; frames are ``grid * cell`` square.
        square (int): side of every square in pixels (< cell).
        num_frames (int): frames per video.
        cue_frames (int): frames showing the cue at the start.
        probe_frames (int): frames showing the board at the end.
    """

    def __init__(self, grid=2, cell=16, square=8, num_frames=20, cue_frames=6, probe_frames=6):
        if grid not in CELL_NAMES:
            raise ValueError(f'grid must be one of {sorted(CELL_NAMES)}, got {grid!r}')
        if grid * grid > len(PALETTE):
            raise ValueError(f'grid {grid} needs {grid * grid} colours, the palette has {len(PALETTE)}')
        if not 0 < square < cell:
            raise ValueError(f'square must be in (0, cell={cell}), got {square!r}')
        if cue_frames < 1 or probe_frames < 1 or cue_frames + probe_frames > num_frames:
            raise ValueError(f'cue_frames ({cue_frames}) and probe_frames ({probe_frames}) must be '
                             f'>= 1 and fit into num_frames ({num_frames})')
        self.grid = grid
        self.cell = cell
        self.square = square
        self.size = grid * cell
        self.num_frames = num_frames
        self.cue_frames = cue_frames
        self.probe_frames = probe_frames

    def _draw(self, frame, top, left, colour):
        frame[top:top + self.square, left:left + self.square] = colour

    def render(self, rng):
        """Draw one video.

        Returns:
            tuple[list[np.ndarray], int, dict]: ``num_frames`` BGR frames of shape
            (size, size, 3), uint8, the label (cell index of the cue colour) and the
            layout: ``cue_frames`` and ``probe_frames`` as [first, stop) frame
            ranges, ``cue_box`` and one ``board_boxes`` entry per cell as
            [top, left, bottom, right) pixel boxes.
        """
        colours = list(PALETTE.values())
        num_cells = self.grid * self.grid
        board = rng.choice(len(colours), size=num_cells, replace=False)
        label = int(rng.integers(num_cells))
        cue_colour = colours[board[label]]
        free = self.size - self.square
        cue_top, cue_left = rng.integers(0, free + 1, size=2)
        jitter = self.cell - self.square
        offsets = rng.integers(0, jitter + 1, size=(num_cells, 2))

        frames = []
        for t in range(self.num_frames):
            frame = np.zeros((self.size, self.size, 3), np.uint8)
            if t < self.cue_frames:
                self._draw(frame, cue_top, cue_left, cue_colour)
            elif t >= self.num_frames - self.probe_frames:
                for index in range(num_cells):
                    row, col = divmod(index, self.grid)
                    self._draw(frame, row * self.cell + offsets[index, 0],
                               col * self.cell + offsets[index, 1], colours[board[index]])
            else:
                top, left = rng.integers(0, free + 1, size=2)
                self._draw(frame, top, left, DISTRACTOR)
            frames.append(frame)
        board_boxes = []
        for index in range(num_cells):
            row, col = divmod(index, self.grid)
            top, left = row * self.cell + offsets[index, 0], col * self.cell + offsets[index, 1]
            board_boxes.append(self._box(top, left))
        layout = dict(
            cue_frames=[0, self.cue_frames],
            probe_frames=[self.num_frames - self.probe_frames, self.num_frames],
            cue_box=self._box(cue_top, cue_left), board_boxes=board_boxes)
        return frames, label, layout

    def _box(self, top, left):
        return [int(top), int(left), int(top) + self.square, int(left) + self.square]


def write_video(path, frames, fps=8):
    """Encode BGR ``frames`` to ``path`` with OpenCV's 'mp4v' (MPEG-4 Part 2) codec."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot open a video writer for {path} (codec mp4v)')
    for frame in frames:
        writer.write(frame)
    writer.release()


def make_demo_dataset(out_dir, num_train=2000, num_val=400, seed=0, spec=None):
    """Write the demo dataset to ``out_dir``; returns the annotation file paths by split."""
    spec = spec or DemoVideoSpec()
    names = class_names(spec.grid)
    os.makedirs(out_dir, exist_ok=True)
    split_seeds = np.random.SeedSequence(seed).spawn(len(SPLITS))
    ann_files = {}
    for split, count, split_seed in zip(SPLITS, (num_train, num_val), split_seeds):
        rng = np.random.default_rng(split_seed)
        video_root = osp.join(out_dir, f'videos_{split}')
        if osp.isdir(video_root):
            shutil.rmtree(video_root)
        lines, layouts = [], {}
        for index in range(count):
            frames, label, layout = spec.render(rng)
            relative = f'{names[label]}/{split}_{index:05d}.mp4'
            layouts[relative] = layout
            os.makedirs(osp.join(video_root, names[label]), exist_ok=True)
            write_video(osp.join(video_root, relative), frames)
            lines.append(f'{relative} {label}\n')
        ann_files[split] = osp.join(out_dir, f'demo_{split}_list_videos.txt')
        with open(ann_files[split], 'w') as handle:
            handle.writelines(lines)
        with open(osp.join(out_dir, f'demo_{split}_layout.json'), 'w') as handle:
            json.dump(dict(size=spec.size, num_frames=spec.num_frames, videos=layouts), handle)
    with open(osp.join(out_dir, 'demo_classes.txt'), 'w') as handle:
        handle.writelines(f'{name}\n' for name in names)
    return ann_files


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out-dir', default='data/demo', help='dataset root (default: data/demo)')
    parser.add_argument('--num-train', type=int, default=2000, help='training videos')
    parser.add_argument('--num-val', type=int, default=400, help='validation videos')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument('--grid', type=int, default=2, choices=sorted(CELL_NAMES),
                        help='the probe board is grid x grid; classes = grid**2')
    parser.add_argument('--cell', type=int, default=16, help='cell size in pixels')
    parser.add_argument('--square', type=int, default=8, help='square size in pixels')
    parser.add_argument('--num-frames', type=int, default=20, help='frames per video')
    parser.add_argument('--cue-frames', type=int, default=6, help='cue frames at the start')
    parser.add_argument('--probe-frames', type=int, default=6, help='board frames at the end')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for name in ('num_train', 'num_val'):
        if getattr(args, name) < 1:
            sys.exit(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    spec = DemoVideoSpec(grid=args.grid, cell=args.cell, square=args.square,
                         num_frames=args.num_frames, cue_frames=args.cue_frames,
                         probe_frames=args.probe_frames)
    ann_files = make_demo_dataset(args.out_dir, args.num_train, args.num_val, args.seed, spec)
    print(f'demo dataset written to {args.out_dir}: {args.num_train} train / {args.num_val} val '
          f'videos of {spec.num_frames} frames at {spec.size}x{spec.size} px, '
          f'{spec.grid ** 2} classes; annotations {ann_files["train"]}, {ann_files["val"]}')


if __name__ == '__main__':
    main()
