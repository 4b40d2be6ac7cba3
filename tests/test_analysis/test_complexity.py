"""nlnet.analysis.complexity: every task's convention, checked against the block's closed form."""
import os.path as osp

import mmaction
import pytest
import torch
from helpers.flops_closed_form import block_closed_form
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmaction.registry import MODELS

import nlnet.openmmlab  # noqa: F401
from nlnet.analysis import config_task, model_complexity
from nlnet.analysis.complexity import (detection_image, recognition_view, recognizer_input_shape,
                                       segmentation_image)

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs')
SEG_R50 = osp.join(CONFIGS, 'segmentation', 'nonlocal_net',
                   'nonlocal_r50-d8_4xb2-40k_cityscapes-512x1024.py')
MMACTION_CONFIGS = osp.join(mmaction.__path__[0], '.mim', 'configs', 'recognition')
DET = osp.join(CONFIGS, 'detection', 'mask-rcnn_{}_1x_coco.py')


def detection_config(name, proposals=1):
    """A detection config whose RoI heads see ``proposals`` boxes (their cost per box is
    fixed, so few keep the test fast without changing what the blocks cost)."""
    cfg = Config.fromfile(DET.format(name))
    cfg.model.test_cfg.rpn.max_per_img = proposals
    return cfg


def test_default_inputs_follow_each_toolbox():
    seg = Config.fromfile(SEG_R50)
    assert segmentation_image(seg) == (1, 3, 512, 1024)
    assert segmentation_image(seg, [769]) == (1, 3, 769, 769)
    assert detection_image() == ((1280, 800), (1, 3, 1280, 800))
    assert detection_image([800, 1333]) == ((800, 1333), (1, 3, 800, 1344))
    video = Config.fromfile(osp.join(CONFIGS, 'recognition', 'nl-i3d',
                                     'nl-i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py'))
    assert recognition_view(video) == (1, 3, 32, 256, 256)
    assert recognition_view(video, [112, 128]) == (1, 3, 32, 112, 128)


def test_segmentation_block_costs_its_closed_form():
    """NonLocalNet minus the same head without its block (an FCN head with the same two
    convolutions and input concatenation) is the block: C = 512, C' = 256, no
    sub-sampling, on the D8 features of a 64 x 96 image (8 x 12 = 96 positions)."""
    cfg = Config.fromfile(SEG_R50)
    nonlocal_net = model_complexity(cfg, [64, 96])
    head = cfg.model.decode_head
    head.pop('non_local_cfg')
    head.update(type='FCNHead', num_convs=2, concat_input=True)
    fcn = model_complexity(cfg, [64, 96])
    block = block_closed_form('embedded_gaussian', 512, 96, 96, 96)
    assert nonlocal_net['flops'][''] - fcn['flops'][''] == block
    assert nonlocal_net['non_local'] == [('decode_head.nl_block', (1, 512, 8, 12), block)]
    assert nonlocal_net['rows'] == ['', 'backbone', 'decode_head', 'decode_head.nl_block']
    assert 'auxiliary_head' not in nonlocal_net['params']


@pytest.fixture(scope='module')
def mask_rcnn_r50():
    return model_complexity(detection_config('r50_fpn'), [128, 160])


def test_detection_block_costs_its_closed_form(mask_rcnn_r50):
    """Mask R-CNN R-50 with the paper's res4 block minus Mask R-CNN: the block at
    stride 16 of a 128 x 160 image (8 x 10 = 80 positions), C = 1024, C' = 512."""
    with_block = model_complexity(detection_config('r50-nl_fpn'), [128, 160])
    block = block_closed_form('embedded_gaussian', 1024, 80, 80, 80)
    assert with_block['flops'][''] - mask_rcnn_r50['flops'][''] == block
    assert with_block['non_local'] == [
        ('backbone.non_local_blocks.layer3.4', (1, 1024, 8, 10), block)]
    assert with_block['rows'] == ['', 'backbone', 'backbone.non_local_blocks.layer3.4', 'neck',
                                  'rpn_head', 'roi_head']


def test_detection_neck_costs_its_three_blocks(mask_rcnn_r50):
    """The non-local FPN: one block (C = 256) on each of P3 (16 x 20, keys pooled 2 x 2
    before phi and g), P4 (8 x 10) and P5 (4 x 5)."""
    neck = model_complexity(detection_config('r50_nl-fpn'), [128, 160])
    blocks = [block_closed_form('embedded_gaussian', 256, 320, 80, 80),
              block_closed_form('embedded_gaussian', 256, 80, 80, 80),
              block_closed_form('embedded_gaussian', 256, 20, 20, 20)]
    assert [flops for _, _, flops in neck['non_local']] == blocks
    assert neck['flops'][''] - mask_rcnn_r50['flops'][''] == sum(blocks)
    assert neck['flops']['neck'] - mask_rcnn_r50['flops']['neck'] == sum(blocks)


def test_config_without_model_is_named(tmp_path):
    path = tmp_path / 'no_model.py'
    path.write_text("default_scope = 'mmseg'\n")
    with pytest.raises(ValueError, match=r'no_model\.py: no `model`'):
        config_task(Config.fromfile(str(path)))


def test_config_of_unknown_scope_is_named(tmp_path):
    path = tmp_path / 'other_scope.py'
    path.write_text("default_scope = 'mmpretrain'\nmodel = dict(type='ImageClassifier')\n")
    with pytest.raises(ValueError, match=r"other_scope\.py: default_scope must be one of "
                       r"\('mmaction', 'mmseg', 'mmdet'\).*'mmpretrain'"):
        config_task(Config.fromfile(str(path)))


@pytest.mark.parametrize('path, shape, expected', [
    (SEG_R50, [1, 512, 1024], 'segmentation config: expected H W or H, got \\[1, 512, 1024\\]'),
    (DET.format('r50_fpn'), [3, 800, 1333], 'detection config: expected H W or H'),
    (osp.join(CONFIGS, 'demo', 'nl-c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py'), [1, 8, 32, 32],
     'recognition config: expected T H W, N C T H W, H W or H, got \\[1, 8, 32, 32\\]'),
], ids=['segmentation', 'detection', 'recognition'])
def test_shape_of_the_wrong_length_is_named(path, shape, expected):
    with pytest.raises(ValueError, match=f'--shape of a {expected}'):
        model_complexity(Config.fromfile(path), shape)


@pytest.mark.parametrize('name, mmaction_name, frames, non_local', [
    ('c2d/c2d_r50-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py',
     'c2d/c2d_r50-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py', 8, 0),
    ('c2d/c2d_r50-in1k-pre_8xb32-16x4x1-100e_kinetics400-rgb.py',
     'c2d/c2d_r50-in1k-pre_8xb32-16x4x1-100e_kinetics400-rgb.py', 16, 0),
    ('i3d/i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py',
     'i3d/i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb.py', 16, 0),
    ('nl-i3d/nl-i3d_r50-in1k-pre-mmaction-dot-product_8xb8-32x2x1-100e_kinetics400-rgb.py',
     'i3d/i3d_imagenet-pretrained-r50-nl-dot-product_8xb8-32x2x1-100e_kinetics400-rgb.py', 16, 5),
    ('nl-i3d/nl-i3d_r50-in1k-pre-mmaction-gaussian_8xb8-32x2x1-100e_kinetics400-rgb.py',
     'i3d/i3d_imagenet-pretrained-r50-nl-gaussian_8xb8-32x2x1-100e_kinetics400-rgb.py', 16, 5),
], ids=['c2d-nopool', 'c2d-16x4x1', 'i3d', 'nl-i3d-dot-product', 'nl-i3d-gaussian'])
def test_recognition_count_equals_mmaction2_count_of_its_own_model(name, mmaction_name, frames,
                                                                   non_local):
    """MMAction2's tool traces extract_feat with mmengine's counter (its no-pool C2D is a 2D
    ResNet in Recognizer2D fed N*T frames); mmcv's non-local blocks form the N x M matrices
    explicitly, so its count is the paper's explicit one."""
    view = (1, 3, frames, 64, 64)
    ref_cfg = Config.fromfile(osp.join(MMACTION_CONFIGS, mmaction_name))
    ref_cfg.model.backbone.pretrained = None
    init_default_scope('mmaction')
    reference = MODELS.build(ref_cfg.model).eval()
    reference.forward = reference.extract_feat
    analyzer = FlopAnalyzer(reference,
                            (torch.randn(recognizer_input_shape(ref_cfg, view)), ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    ours = model_complexity(Config.fromfile(osp.join(CONFIGS, 'recognition', name)),
                            view[2:], 'explicit')
    assert ours['flops'][''] == analyzer.total()
    assert ours['params'][''] == parameter_count(reference)['']
    assert len(ours['non_local']) == non_local
