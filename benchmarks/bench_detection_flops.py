"""Parameter and FLOPs overhead of the non-local detection models against Mask R-CNN.

Counts with mmengine's ``FlopAnalyzer`` (as mmdet's ``tools/analysis_tools/get_flops.py``,
one multiply-add = 1 FLOP) on one image of ``--shape`` (default 800x1333, padded to
a multiple of 32 as the data preprocessor does), plus a handle for
``aten::scaled_dot_product_attention`` (the non-local embedded-Gaussian path),
which mmengine does not count by itself. The whole detector runs in its
``tensor`` mode (backbone, neck, RPN, and box and mask heads on the RPN's
proposals); to give every model the same proposals each non-local model loads
the baseline's randomly initialised weights, which keeps its outputs equal.

    python benchmarks/bench_detection_flops.py \
        configs/detection/mask-rcnn_r50_fpn_1x_coco.py \
        configs/detection/mask-rcnn_r50-nl_fpn_1x_coco.py \
        configs/detection/mask-rcnn_r50_nl-fpn_1x_coco.py
"""
import argparse
import logging
import math
import os.path as osp

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import nlnet  # noqa: F401  (registers NLResNet, NonLocalFPN)
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample


def sdpa_flop_jit(inputs, outputs):
    """q (..., N, D), k (..., M, D), v (..., M, Dv): N*M*D for q k^T plus N*M*Dv for the sum."""
    query, key, value = (inp.type().sizes() for inp in inputs[:3])
    batch = math.prod(query[:-2])
    num_queries, depth = query[-2:]
    num_keys, value_depth = value[-2], value[-1]
    return batch * num_queries * num_keys * (depth + value_depth)


def build(config):
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def name(config):
    return osp.splitext(osp.basename(config))[0]


def data_sample(height, width, pad_divisor=32):
    padded = tuple(math.ceil(s / pad_divisor) * pad_divisor for s in (height, width))
    sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                         pad_shape=padded, batch_input_shape=padded,
                                         scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData()
    return sample, padded


def count(model, inputs, sample):
    """(total FLOPs, {module: FLOPs}) of the detector's tensor-mode forward."""

    class Tensor(torch.nn.Module):

        def __init__(self, detector):
            super().__init__()
            self.detector = detector

        def forward(self, x):
            return self.detector._forward(x, [sample])

    analyzer = FlopAnalyzer(Tensor(model), (inputs, ))
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analyzer.total(), analyzer.by_module()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('baseline', help='baseline Mask R-CNN config')
    parser.add_argument('variants', nargs='+', help='non-local configs to compare')
    parser.add_argument('--shape', type=int, nargs=2, default=(800, 1333), metavar=('H', 'W'))
    return parser.parse_args()


def main():
    args = parse_args()
    MMLogger.get_current_instance().setLevel(logging.ERROR)
    torch.manual_seed(0)
    sample, padded = data_sample(*args.shape)
    inputs = torch.randn(1, 3, *padded)
    baseline = build(args.baseline)
    base_params = parameter_count(baseline)['']
    with torch.no_grad():
        base_flops, _ = count(baseline, inputs, sample)
    print(f'input {tuple(inputs.shape)} (image {args.shape[0]}x{args.shape[1]})')
    print(f'{"config":<40} {"params (M)":>11} {"+params (M)":>12} {"GFLOPs":>9} '
          f'{"+GFLOPs":>9} {"+%":>7} {"non-local GFLOPs":>17}')
    print(f'{name(args.baseline):<40} {base_params / 1e6:>11.2f} {"":>12} '
          f'{base_flops / 1e9:>9.2f}')
    for config in args.variants:
        model = build(config)
        missing = model.load_state_dict(baseline.state_dict(), strict=False).missing_keys
        if any('non_local' not in key and 'nl_blocks' not in key for key in missing):
            raise RuntimeError(f'{config}: baseline weights miss non-block keys {missing}')
        params = parameter_count(model)['']
        with torch.no_grad():
            flops, by_module = count(model, inputs, sample)
        block_flops = sum(v for k, v in by_module.items()
                          if k.endswith(('non_local_blocks', 'nl_blocks')))
        print(f'{name(config):<40} {params / 1e6:>11.2f} '
              f'{(params - base_params) / 1e6:>12.3f} {flops / 1e9:>9.2f} '
              f'{(flops - base_flops) / 1e9:>9.2f} {100 * (flops / base_flops - 1):>6.1f}% '
              f'{block_flops / 1e9:>17.2f}')


if __name__ == '__main__':
    main()
