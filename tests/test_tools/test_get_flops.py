"""tools/analysis/get_flops.py on every config nlnet ships, and its command line."""
import glob
import os.path as osp
import re

import pytest
from helpers.tool_modules import load_tool
from mmengine.config import Config

import nlnet.openmmlab  # noqa: F401
from nlnet.analysis import config_task, model_complexity
from nlnet.analysis.complexity import recognition_view

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIGS = sorted(osp.relpath(path, ROOT) for path in glob.glob(
    osp.join(ROOT, 'configs', '**', '*.py'), recursive=True) if '_base_' not in path)
# Small images that still leave every sub-sampled non-local block (res5 of C2D, P5 of the
# non-local FPN) 2 x 2 positions to pool; clips keep the config's frames up to 16, or up to
# 32 where blocks run on groups of frames (the official I3D's res3 groups of 4 see 1/8 of
# the frames).
SMALL_SHAPES = {'segmentation': [32, 32], 'detection': [64, 64]}
SMALL_FRAME_SIZE, MAX_FRAMES, MAX_GROUPED_FRAMES = 64, 16, 32
# Where the weights come from does not change what is counted (none are loaded).
WEIGHT_SOURCES = ('pretrained', 'pretrained2d', 'init_cfg')
_COUNTED = {}
NON_LOCAL_NAME = re.compile(r'(^|[-_])nl[-_]|nonlocal')


def small_count(path):
    """model_complexity at a small shape, counted once per distinct model (the schedule,
    dataset-size and test-time-augmentation variants of a row build the same model)."""
    cfg = Config.fromfile(osp.join(ROOT, path))
    task = config_task(cfg)
    if task == 'detection':  # the RoI heads cost the same per box: two boxes suffice
        cfg.model.test_cfg.rpn.max_per_img = 2
    counted = cfg.model.get('module', cfg.model)  # a test-time-augmentation wrapper's model
    key = (task, repr(_architecture(counted.to_dict())))
    if key not in _COUNTED:
        grouped = task == 'recognition' and cfg.model.backbone.get('non_local_group_frames')
        frames = min(recognition_view(cfg)[2], MAX_GROUPED_FRAMES if grouped else MAX_FRAMES)
        _COUNTED[key] = model_complexity(
            cfg, SMALL_SHAPES.get(task) or [frames, SMALL_FRAME_SIZE, SMALL_FRAME_SIZE])
    return _COUNTED[key]


def _architecture(model_cfg):
    if isinstance(model_cfg, dict):
        return {k: _architecture(v) for k, v in model_cfg.items() if k not in WEIGHT_SOURCES}
    if isinstance(model_cfg, (list, tuple)):
        return [_architecture(v) for v in model_cfg]
    return model_cfg


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, 'configs') for p in CONFIGS])
def test_counts_every_shipped_config(path):
    result = small_count(path)
    flops, params = result['flops'], result['params']
    assert flops[''] > 0 and params[''] > 0
    assert all(count > 0 for _, _, count in result['non_local'])
    listed = set(result['rows'])
    assert {name for name, _, _ in result['non_local']} <= listed
    assert {'segmentation': {'backbone', 'decode_head'}, 'detection': {'backbone', 'neck',
            'roi_head'}, 'recognition': {'backbone'}}[result['task']] <= listed
    assert bool(NON_LOCAL_NAME.search(osp.basename(path))) == bool(result['non_local'])


def test_cli_prints_the_detection_table(capsys, monkeypatch):
    """The tool's main in this process, on the config's path relative to the repository."""
    monkeypatch.chdir(ROOT)
    load_tool('analysis/get_flops.py').main([
        'configs/detection/mask-rcnn_r50-nl_fpn_1x_coco.py', '--shape', '96', '100',
        '--cfg-options', 'model.test_cfg.rpn.max_per_img=2'])
    out = capsys.readouterr().out
    assert 'config: mask-rcnn_r50-nl_fpn_1x_coco.py (detection)' in out
    assert 'input: (1, 3, 96, 128) (image 96x100, padded)' in out
    for row in ('model', 'backbone', 'backbone.non_local_blocks.layer3.4', 'neck', 'rpn_head',
                'roi_head'):
        assert f'| {row} |' in out
    assert 'params: 46.5M' in out
