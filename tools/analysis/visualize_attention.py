"""Draw what a trained model's non-local blocks attend to (the paper's Figure 3).

    python tools/analysis/visualize_attention.py CONFIG CHECKPOINT INPUT [--block NAME ...]
        [--queries t,y,x ...] [--num-queries 4] [--topk 20] [--heatmap] [--num-frames 4]
        [--out-dir DIR] [--cfg-options k=v ...]

INPUT is a video for recognition configs (one clip, centre crop, through the
config's test pipeline) or an image for segmentation and detection configs.
Queries are in the model input's coordinates: ``t,y,x`` (clip frame, pixel of
the crop) for video, ``y,x`` for images; by default each block's positions where
it changes the features most. For each block and query it writes
``<block>_q<i>.png`` (frames side by side, the query starred, arrows to the
top-k keys) and ``<block>_q<i>.json`` (query, top-k key regions and weights).
See :mod:`nlnet.visualization`.
"""
import argparse
import sys

from mmengine.config import Config, DictAction

import nlnet.openmmlab  # noqa: F401  (registers nlnet's models)
from nlnet.visualization import parse_query, visualize_attention


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Draw a model's non-local attention")
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint of the config\'s model')
    parser.add_argument('input', help='video (recognition) or image (segmentation, detection)')
    parser.add_argument('--block', nargs='+', help='module paths of non-local blocks '
                        '(default: every block)')
    parser.add_argument('--queries', nargs='+', help='query positions t,y,x (video) or y,x '
                        '(image) in input pixels (default: the strongest positions)')
    parser.add_argument('--num-queries', type=int, default=4,
                        help='queries per block when --queries is not given')
    parser.add_argument('--topk', type=int, default=20, help='keys drawn per query')
    parser.add_argument('--heatmap', action='store_true', help='overlay the weights too')
    parser.add_argument('--num-frames', type=int, default=4,
                        help='video frames drawn side by side (at a stride)')
    parser.add_argument('--out-dir', default='work_dirs/attention', help='output folder')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    queries = [parse_query(text) for text in args.queries] if args.queries else None
    written = visualize_attention(cfg, args.checkpoint, args.input, args.out_dir, args.block,
                                  queries, args.num_queries, args.topk, args.heatmap,
                                  args.num_frames)
    print(f'wrote {len(written)} figures (PNG + JSON) to {args.out_dir}')
    return written


if __name__ == '__main__':
    try:
        main()
    except ValueError as error:
        sys.exit(f'visualize_attention.py: error: {error}')
