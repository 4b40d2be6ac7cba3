"""Parameter and FLOPs overhead of the non-local detection models against Mask R-CNN.

Counts each config as ``tools/analysis/get_flops.py`` does (:mod:`nlnet.analysis`:
mmengine's counter with the fused-attention handle, non-local blocks in the paper's
explicit form, one multiply-add = 1 FLOP): backbone, neck, RPN head and RoI heads
on one image of ``--shape`` (default 800x1333, padded to a multiple of 32), the
RoI heads on the RPN's 1000 test proposals (the mask head on 100). The overhead of
a non-local model over the baseline is then exactly its blocks' cost.

    python benchmarks/bench_detection_flops.py \
        configs/detection/mask-rcnn_r50_fpn_1x_coco.py \
        configs/detection/mask-rcnn_r50-nl_fpn_1x_coco.py \
        configs/detection/mask-rcnn_r50_nl-fpn_1x_coco.py
    python benchmarks/bench_detection_flops.py configs/detection/mask-rcnn_r50_fpn_1x_coco.py \
        configs/detection/mask-rcnn_r50_nl-fpn_1x_coco.py --nl-flops executed \
        --cfg-options "model.neck.non_local=(0,1,2,3)" "model.neck.sub_sample_levels=(0,1)"
"""
import argparse
import logging
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger

import nlnet.openmmlab  # noqa: F401  (registers NonLocalResNet, NonLocalFPN)
from nlnet.analysis import NL_FLOPS, model_complexity


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('baseline', help='baseline Mask R-CNN config')
    parser.add_argument('variants', nargs='+', help='non-local configs to compare')
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1333), metavar=('H', 'W'))
    parser.add_argument(
        '--nl-flops', choices=NL_FLOPS, default='explicit',
        help='non-local blocks traced in explicit form or as nlnet runs them (the same count '
        'for the embedded Gaussian; executed never forms the N x M matrix, which P2 needs)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the variants (e.g. model.neck.non_local)')
    return parser.parse_args()


def count(config, args, cfg_options=None):
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(cfg_options or {})
    return model_complexity(cfg, args.shape, args.nl_flops)


def main():
    args = parse_args()
    MMLogger.get_current_instance().setLevel(logging.ERROR)
    base = count(args.baseline, args)
    base_flops, base_params = base['flops'][''], base['params']['']
    print(f'input {base["input_shape"]} (image {args.shape[0]}x{args.shape[1]})')
    print(f'{"config":<40} {"params (M)":>11} {"+params (M)":>12} {"GFLOPs":>9} '
          f'{"+GFLOPs":>9} {"+%":>7} {"non-local GFLOPs":>17} {"+neck GFLOPs":>13}')
    print(f'{osp.splitext(osp.basename(args.baseline))[0]:<40} {base_params / 1e6:>11.2f} '
          f'{"":>12} {base_flops / 1e9:>9.2f}')
    for config in args.variants:
        result = count(config, args, args.cfg_options)
        flops, params = result['flops'][''], result['params']['']
        blocks = sum(block_flops for _, _, block_flops in result['non_local'])
        neck = result['flops']['neck'] - base['flops']['neck']
        print(f'{osp.splitext(osp.basename(config))[0]:<40} {params / 1e6:>11.2f} '
              f'{(params - base_params) / 1e6:>12.3f} {flops / 1e9:>9.2f} '
              f'{(flops - base_flops) / 1e9:>9.2f} {100 * (flops / base_flops - 1):>6.1f}% '
              f'{blocks / 1e9:>17.2f} {neck / 1e9:>13.2f}')


if __name__ == '__main__':
    main()
