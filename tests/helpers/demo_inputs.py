"""Inputs of the demo and inference-API tests: seeded checkpoints of freshly built models
(no training), a tiny NonLocalNet config, a drawn scene image, and a video list in
Kinetics' layout holding any videos."""
import os.path as osp

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from helpers.video_tools import DEMO_CONFIG, ROOT

ADE_CONFIG = osp.join(ROOT, 'configs', 'segmentation', 'nonlocal_net',
                      'nonlocal_r50-d8_4xb4-80k_ade20k-512x512.py')
C2D_DEMO_CONFIG = osp.join(ROOT, 'configs', 'demo', 'c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py')
# The tiny segmentor sees images resized to fit within this (w, h).
TINY_SEG_SCALE = (128, 64)


def save_seeded_checkpoint(cfg, path, seed=0, meta=None):
    """The state dict of ``cfg``'s model built with torch seed ``seed``, as an mmengine
    checkpoint at ``path`` (with ``meta`` when given)."""
    init_default_scope(cfg.default_scope)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    checkpoint = dict(state_dict=model.state_dict())
    if meta is not None:
        checkpoint['meta'] = meta
    torch.save(checkpoint, path)
    return str(path)


def dataset_meta(cfg):
    """``meta['dataset_meta']`` as a training run of ``cfg`` saves it (classes and palette of
    its test dataset), which MMSeg's ``init_model`` reads."""
    from mmseg.registry import DATASETS
    metainfo = DATASETS.get(cfg.test_dataloader.dataset.type).METAINFO
    return dict(classes=list(metainfo['classes']), palette=[list(c) for c in metainfo['palette']])


def write_tiny_ade_config(path):
    """The ADE20K NonLocalNet R-50-D8 row shrunk for a CPU (ResNet-18-D8, a narrow head),
    testing at TINY_SEG_SCALE; the top-level ``test_pipeline`` (MMSeg's inference_model
    reads it) and the test dataloader's are the same."""
    cfg = Config.fromfile(ADE_CONFIG)
    cfg.model.update(pretrained=None)
    cfg.model.backbone.depth = 18
    cfg.model.decode_head.update(in_channels=512, channels=32)
    cfg.model.auxiliary_head.update(in_channels=256, channels=16)
    cfg.model.data_preprocessor.size = (32, 32)
    for pipeline in (cfg.test_pipeline, cfg.test_dataloader.dataset.pipeline):
        next(t for t in pipeline if t['type'] == 'Resize').scale = TINY_SEG_SCALE
    cfg.dump(str(path))
    return str(path)


def write_scene_image(path, height=96, width=128):
    """A sky, a sun and a lawn, as a PNG (BGR on disk, as OpenCV writes)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:height // 2] = (235, 206, 135)
    image[height // 2:] = (60, 140, 60)
    cv2.circle(image, (width * 5 // 8, height * 5 // 12), height // 6, (0, 200, 255), -1)
    cv2.imwrite(str(path), image)
    return str(path)


def write_video_list(root, videos):
    """A Kinetics-layout list ``root/list.txt`` of ``videos`` (absolute paths, label 0 each),
    relative to ``/``; returns (list file, data prefix)."""
    ann_file = osp.join(str(root), 'list.txt')
    with open(ann_file, 'w') as handle:
        handle.write(''.join(f'{osp.relpath(video, "/")} 0\n' for video in videos))
    return ann_file, '/'


def write_demo_test_config(path, ann_file, prefix, pipeline=None):
    """The NL-C2D demo config testing the videos of ``ann_file`` one by one in this process
    (no workers), with its own test pipeline when ``pipeline`` is given."""
    extra = f', pipeline={pipeline!r}' if pipeline is not None else ''
    with open(path, 'w') as handle:
        handle.write(
            f'_base_ = [{DEMO_CONFIG!r}]\n'
            'test_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False, '
            f'dataset=dict(ann_file={ann_file!r}, data_prefix=dict(video={prefix!r}){extra}))\n')
    return str(path)
