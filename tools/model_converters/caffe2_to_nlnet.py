"""Convert an official Caffe2 checkpoint (facebookresearch/video-nonlocal-net) for nlnet.

    python tools/model_converters/caffe2_to_nlnet.py IN.pkl OUT.pth --config CONFIG
    python tools/model_converters/caffe2_to_nlnet.py IN.pkl OUT.pth        # finds the configs
    python tools/model_converters/caffe2_to_nlnet.py r50.pkl r50.pth --imagenet

A video model is loaded strictly into the model of CONFIG and written as an mmengine
checkpoint. Without --config it is checked against every config of
configs/recognition/official/, and among those it fits the official file name
(``i3d_nonlocal_32x2_IN_pretrain_400k.pkl``) chooses; a file of another name that fits
several configs is refused with their list. --imagenet writes an ImageNet ResNet in
torchvision's layout for ``model.backbone.pretrained``. Errors end the tool with
``caffe2_to_nlnet.py: error: ...`` and exit status 2.
"""
import argparse
import glob
import os.path as osp
import sys

import torch
from mmengine.logging import MMLogger

from nlnet.checkpoint_errors import UnsafeCheckpointError
from nlnet.converters import (choose_config, convert_official_imagenet_model,
                              convert_official_video_model)

OFFICIAL_CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                            'configs', 'recognition', 'official', '*.py')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('pkl', help='official Caffe2 checkpoint (.pkl)')
    parser.add_argument('out', help='output checkpoint (.pth)')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--config', help='nlnet config whose model the checkpoint is loaded into')
    mode.add_argument('--imagenet', action='store_true',
                      help='the file is an official ImageNet ResNet-50/101 '
                      '(pretrained_model.tar.gz)')
    return parser.parse_args()


def main():
    args = parse_args()
    try:
        return convert(args)
    # Caffe2ConversionError and ConfigChoiceError are ValueErrors, as is a file that is no
    # readable Caffe2 pickle; UnsafeCheckpointError: a pickle naming a forbidden global.
    except (ValueError, FileNotFoundError, UnsafeCheckpointError) as error:
        print(f'{osp.basename(sys.argv[0])}: error: {error}', file=sys.stderr)
        return 2


def convert(args):
    logger = MMLogger.get_instance('caffe2_to_nlnet')
    if args.imagenet:
        state_dict, _ = convert_official_imagenet_model(args.pkl, logger)
        torch.save(state_dict, args.out)
        logger.info(f'wrote {args.out}; use it as model.backbone.pretrained')
        return 0
    config = args.config
    if config is None:
        config, reason = choose_config(args.pkl, sorted(glob.glob(OFFICIAL_CONFIGS)))
        logger.info(f'{args.pkl}: config {osp.basename(config)} ({reason})')
    model, dropped = convert_official_video_model(args.pkl, config, logger)
    torch.save(dict(state_dict=model.state_dict(),
                    meta=dict(source=osp.abspath(args.pkl), config=config,
                              dropped_blobs=dropped)), args.out)
    logger.info(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
