"""Does the demo's NL-C2D look at the cue? A number that makes its attention figures checkable.

In the demo game (``tools/data/make_demo_dataset.py``) the label is the board cell
whose square has the cue's colour. For each validation video, the queries are the
block's cells that hold the centre of that answer square in the clip's board
frames; the share is the attention weight they put on the key cells that overlap
the cue square in the clip's cue frames. A block whose weights were uniform over
its M keys would put (number of such key cells) / M there.

The generator's ``demo_<split>_layout.json`` gives the boxes in video pixels and
frames; the demo's test pipeline keeps the pixels (32 x 32 frames, no resize or
crop), and the clip's ``frame_inds`` give each clip frame's video frame.
"""
import json
import os.path as osp

import numpy as np

from .attention import BlockGeometry, query_attention
from .model_input import run_model
from .visualize import select_blocks, visualize_attention


def _overlaps(box, start_stop_y, start_stop_x):
    top, left, bottom, right = box
    (y0, y1), (x0, x1) = start_stop_y, start_stop_x
    return top < y1 and y0 < bottom and left < x1 and x0 < right


def read_layout(data_root, split):
    """({video: layout}, {video: label}, frame size); videos are paths relative to the
    split's folder, labels those of the split's annotation list."""
    paths = [osp.join(data_root, f'demo_{split}_{kind}') for kind in ('layout.json',
                                                                       'list_videos.txt')]
    for path in paths:
        if not osp.isfile(path):
            raise ValueError(f'{path!r} does not exist; generate the demo dataset with '
                             'tools/data/make_demo_dataset.py, which writes it')
    with open(paths[0]) as handle:
        layout = json.load(handle)
    with open(paths[1]) as handle:
        labels = {video: int(label) for video, label in (line.split() for line in handle)}
    return layout['videos'], labels, layout['size']


def answer_centre(layout, label):
    """(y, x) pixel at the centre of the answer square (the board cell ``label``)."""
    top, left, bottom, right = layout['board_boxes'][label]
    return (top + bottom - 1) / 2, (left + right - 1) / 2


def board_clip_frames(layout, frame_inds):
    """Clip frames that show the board."""
    first, stop = layout['probe_frames']
    return [t for t, frame in enumerate(frame_inds) if first <= frame < stop]


def cue_keys(layout, frame_inds, geometry, whole_frames=False):
    """Flat key indices whose input region overlaps the cue square in a cue frame of the
    clip (``whole_frames``: every key of the cue frames)."""
    first, stop = layout['cue_frames']
    cue_clip_frames = [t for t, frame in enumerate(frame_inds) if first <= frame < stop]
    keys = []
    for index in range(geometry.num_keys):
        (t0, t1), rows, cols = geometry.key_box(index)
        if any(t0 <= t < t1 for t in cue_clip_frames) and (
                whole_frames or _overlaps(layout['cue_box'], rows, cols)):
            keys.append(index)
    return keys


def cue_attention_share(model, cfg, data_root, split='val', block_name=None, limit=None):
    """Mean attention share of answer-cell queries on the cue, and the uniform share.

    Args:
        model (nn.Module): the demo NL-C2D, from :func:`~.model_input.build_model`.
        cfg (Config): its config.
        data_root (str): the demo dataset (``data/demo``).
        split (str): ``train`` or ``val``.
        block_name (str | None): the block (default: the model's only one).
        limit (int | None): only the first videos of the split.

    Returns:
        dict: ``share`` and ``uniform`` (means over videos of the per-video means
        over queries); ``frame_share`` and ``frame_uniform``, the same for all keys
        of the cue frames (where the cue is, whatever the position); ``videos``,
        ``block`` and ``per_video`` {video: its four figures}.
    """
    blocks = select_blocks(model, [block_name] if block_name else None, cfg.filename)
    if len(blocks) != 1:
        raise ValueError(f'--block: the model has {len(blocks)} non-local blocks '
                         f'({", ".join(blocks)}); name one')
    (name, block), = blocks.items()
    if block.scope != 'spacetime':
        raise ValueError(f'block {name} has scope {block.scope!r}; the uniform share is '
                         "defined for scope='spacetime'")
    layouts, labels, size = read_layout(data_root, split)
    per_video = {}
    for video in sorted(layouts)[:limit]:
        run = run_model(model, cfg, osp.join(data_root, f'videos_{split}', video))
        if run.input_size[1:] != (size, size):
            raise ValueError(f'{video}: the test pipeline gives {run.input_size[1:]} frames, '
                             f'not the generator\'s {size}x{size}; the layout boxes would not fit')
        x = run.block_inputs[name]
        geometry = BlockGeometry(block, x.shape[2:], run.input_size)
        centre = answer_centre(layouts[video], labels[video])
        queries = [(t, *centre) for t in board_clip_frames(layouts[video], run.frame_inds)]
        square = cue_keys(layouts[video], run.frame_inds, geometry)
        frames = cue_keys(layouts[video], run.frame_inds, geometry, whole_frames=True)
        if not queries or not square:
            raise ValueError(f'{video}: the clip (frames {run.frame_inds}) shows no '
                             f'{"board" if not queries else "cue"} frame')
        weights = query_attention(block, x, [geometry.query_index(q) for q in queries])
        per_video[video] = dict(
            share=float(weights[:, square].sum(-1).mean()),
            uniform=len(square) / geometry.num_keys,
            frame_share=float(weights[:, frames].sum(-1).mean()),
            frame_uniform=len(frames) / geometry.num_keys)
    means = {key: float(np.mean([v[key] for v in per_video.values()]))
             for key in ('share', 'uniform', 'frame_share', 'frame_uniform')}
    return dict(means, videos=len(per_video), block=name, per_video=per_video)


def draw_demo_figures(cfg, checkpoint, data_root, out_dir, count=3, split='val', topk=8):
    """Figure-3-style PNG + JSON for the first ``count`` videos of the split, the query
    on the answer square in the clip's last board frame; returns the PNGs written."""
    layouts, labels, _ = read_layout(data_root, split)
    clip = next(t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'SampleFrames')
    written = []
    for video in sorted(layouts)[:count]:
        path = osp.join(data_root, f'videos_{split}', video)
        # The test pipeline's centre clip ends on the board (cue_attention_share checks
        # each clip shows it), so the last clip frame holds the answer square.
        query = [(clip['clip_len'] - 1, *answer_centre(layouts[video], labels[video]))]
        written += visualize_attention(cfg, checkpoint, path, osp.join(
            out_dir, osp.splitext(osp.basename(video))[0]), queries=query, topk=topk,
            num_shown=clip['clip_len'])
    return written
