"""Export a recognizer (one view) or a NonLocalNet segmentor (one image) to ONNX, check the
file with onnx.checker and compare onnxruntime with PyTorch on the same input.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT --out model.onnx
        [--shape ...] [--dynamic] [--exporter dynamo|torchscript] [--cfg-options ...]

The graph takes what the config's data preprocessor gives (normalised RGB): a
recognizer (N, C, T, H, W) clips -> (N, num_classes) scores, a segmentor
(N, 3, H, W) images -> (N, num_classes, H, W) logits. ``--shape``: recognition
T H W (or N C T H W, H W, H; default one test view), segmentation H W (or
N C H W, H; default the crop). ``--dynamic`` frees the batch axis, and the time
axis of clips. See :mod:`nlnet.deployment`.
"""
import nlnet.openmmlab  # noqa: F401,I001  (first: registers nlnet's models)

import argparse
import os
import sys

from mmengine.config import DictAction

from nlnet.deployment import export_config_model
from nlnet.ops.onnx_export import EXPORTERS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Export a config's model to ONNX and check it")
    parser.add_argument('config', help='recognition or segmentation config file')
    parser.add_argument('checkpoint', help="checkpoint of the config's model")
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs='+',
                        help='input: recognition T H W (or N C T H W, H W, H), segmentation '
                        'H W (or N C H W, H); default: the config\'s test view / crop')
    parser.add_argument('--dynamic', action='store_true',
                        help='free batch axis (and time axis of clips) in the graph')
    parser.add_argument('--exporter', choices=EXPORTERS, default='dynamo',
                        help="torch.onnx.export's exporter (default: dynamo, PyTorch's)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    result = export_config_model(args.config, args.checkpoint, args.out, args.shape,
                                 args.dynamic, args.exporter, args.cfg_options)
    free = ', '.join(f'{axis} ({name})' for axis, name in result.dynamic_axes.items())
    print(f'{args.config} ({result.task}): input {result.input_shape} -> output '
          f'{result.output_shape}; dynamic axes: {free or "none"}')
    print(f'wrote {args.out} ({os.path.getsize(args.out) / 2**20:.1f} MiB), onnx.checker '
          f'passed, max relative difference onnxruntime vs PyTorch '
          f'{result.onnx.max_relative_difference:.2e}')
    return result


if __name__ == '__main__':
    try:
        main()
    except ValueError as error:  # a bad file or shape; onnxruntime differing from PyTorch
        sys.exit(f'export_onnx.py: error: {error}')
