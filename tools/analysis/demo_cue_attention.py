"""The demo NL-C2D's attention on the cue, as a number and as figures.

    python tools/analysis/demo_cue_attention.py CONFIG CHECKPOINT [--data-root data/demo]
        [--split val] [--limit N] [--figures 3] [--out-dir DIR]

Prints the share of attention that queries on the board's answer square put on
the cue square, and on the cue frames (means over the split's videos), beside
what a uniform block would put there, writes it to ``<out-dir>/cue_share.json``,
and draws Figure-3-style attention maps of the first ``--figures`` videos. See
:mod:`nlnet.visualization.demo_cue`.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import Config

import nlnet.openmmlab  # noqa: F401  (registers nlnet's models)
from nlnet.visualization import build_model
from nlnet.visualization.demo_cue import cue_attention_share, draw_demo_figures


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="The demo NL-C2D's attention on the cue")
    parser.add_argument('config', help='the demo NL-C2D config')
    parser.add_argument('checkpoint', help='its trained checkpoint')
    parser.add_argument('--data-root', default='data/demo', help='demo dataset root')
    parser.add_argument('--split', choices=('train', 'val'), default='val')
    parser.add_argument('--limit', type=int, help='only the first N videos')
    parser.add_argument('--figures', type=int, default=3, help='videos to draw')
    parser.add_argument('--out-dir', default='work_dirs/demo/attention', help='output folder')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    model = build_model(cfg, args.checkpoint)
    result = cue_attention_share(model, cfg, args.data_root, args.split, limit=args.limit)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'cue_share.json'), 'w') as handle:
        json.dump(result, handle, indent=1)
    figures = draw_demo_figures(cfg, args.checkpoint, args.data_root, args.out_dir,
                                args.figures, args.split)
    print(f'attention of answer-square queries on the cue ({result["block"]}, '
          f'{result["videos"]} {args.split} videos): {100 * result["share"]:.1f} % '
          f'(a uniform block: {100 * result["uniform"]:.1f} %); on the cue frames: '
          f'{100 * result["frame_share"]:.1f} % (uniform: {100 * result["frame_uniform"]:.1f} %)')
    print(f'figures: {", ".join(figures)}')
    return result


if __name__ == '__main__':
    try:
        main()
    except ValueError as error:
        sys.exit(f'demo_cue_attention.py: error: {error}')
