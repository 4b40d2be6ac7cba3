"""FLOPs and parameters of the model a config builds, printed as a table.

    python tools/analysis/get_flops.py CONFIG [--shape ...] [--nl-flops explicit|executed]

Recognition, segmentation and detection configs, each counted as its toolbox's
``get_flops.py`` counts (one multiply-add = 1 FLOP; conventions and ``--shape``
forms in :mod:`nlnet.analysis.complexity`):

- recognition: backbone features of one test view (``--shape T H W``);
- segmentation: backbone + decode head on one image (``--shape H W``, default the crop);
- detection: backbone + neck + RPN and RoI heads (``--shape H W``, default 1280 800,
  padded to a multiple of 32).

Non-local blocks are counted in the paper's explicit form (``--nl-flops explicit``,
as mmcv computes them) or as nlnet runs them (``executed``), see
:mod:`nlnet.analysis.flops`.
"""
import argparse
import os.path as osp

from mmengine.config import Config, DictAction

import nlnet.openmmlab  # noqa: F401  (registers nlnet's models)
from nlnet.analysis import NL_FLOPS, format_size, format_table, model_complexity


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="FLOPs and parameters of a config's model")
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape', type=int, nargs='+',
        help='input: recognition T H W, N C T H W, H W or H (default: one test view); '
        'segmentation and detection H W or H (default: the crop; 1280 800)')
    parser.add_argument(
        '--nl-flops', choices=NL_FLOPS, default='explicit',
        help='count non-local blocks as the paper/mmcv (explicit) or as nlnet runs them '
        '(executed)')
    parser.add_argument('--max-depth', type=int, default=2,
                        help='module depth of the table (recognition)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    result = model_complexity(cfg, args.shape, args.nl_flops, args.max_depth)
    print(f'config: {osp.basename(args.config)} ({result["task"]})')
    image = (f' (image {result["image_shape"][0]}x{result["image_shape"][1]}, padded)'
             if 'image_shape' in result else '')
    print(f'input: {result["input_shape"]}{image}; one multiply-add = 1 FLOP; '
          f'non-local blocks: {args.nl_flops}')
    print(format_table(result, result['rows']))
    print(f'\nFLOPs: {format_size(result["flops"][""])}  '
          f'params: {format_size(result["params"][""])}')
    return result


if __name__ == '__main__':
    main()
