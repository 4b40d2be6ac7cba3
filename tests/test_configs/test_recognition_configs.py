"""The video recognition configs: names, schedules, test protocol, MMAction2's rows."""
import glob
import os.path as osp
import re

import mmaction
import pytest
from mmengine.config import Config

import nlnet.openmmlab  # noqa: F401
from mmaction.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'recognition')
MMACTION_CONFIG_DIR = osp.join(mmaction.__path__[0], '.mim', 'configs', 'recognition')
# official/ builds the Caffe2 release's models, named and tested as such in tests/test_converters;
# charades/ fine-tunes Kinetics rows on Charades (tests/test_configs/test_charades_configs.py).
CONFIGS = sorted(p for p in glob.glob(osp.join(CONFIG_DIR, '*', '*.py'))
                 if osp.basename(osp.dirname(p)) not in ('official', 'charades'))
NAME = re.compile(r'(?P<model>[a-z0-9-]+)_(?P<backbone>r\d+)-(?P<pretrain>[a-z0-9-]+)_'
                  r'(?P<gpus>\d+)xb(?P<batch>\d+)-(?P<clip>\d+)x(?P<interval>\d+)x(?P<clips>\d+)-'
                  r'(?P<epochs>\d+)e_kinetics400-rgb\.py')
# nlnet config -> MMAction2's config of the same table row.
MMACTION_ROWS = {
    'c2d/c2d_r50-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py':
    'c2d/c2d_r50-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py',
    'c2d/c2d_r101-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py':
    'c2d/c2d_r101-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py',
    'c2d/c2d_r50-in1k-pre_8xb32-8x8x1-100e_kinetics400-rgb.py':
    'c2d/c2d_r50-in1k-pre_8xb32-8x8x1-100e_kinetics400-rgb.py',
    'c2d/c2d_r50-in1k-pre_8xb32-16x4x1-100e_kinetics400-rgb.py':
    'c2d/c2d_r50-in1k-pre_8xb32-16x4x1-100e_kinetics400-rgb.py',
    'i3d/i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py':
    'i3d/i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb.py',
    **{f'nl-i3d/nl-i3d_r50-in1k-pre-mmaction-{mode}_8xb8-32x2x1-100e_kinetics400-rgb.py':
       f'i3d/i3d_imagenet-pretrained-r50-nl-{mode}_8xb8-32x2x1-100e_kinetics400-rgb.py'
       for mode in ('embedded-gaussian', 'dot-product', 'gaussian')},
}
SHARED_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader', 'val_evaluator',
               'test_evaluator', 'train_cfg', 'param_scheduler', 'optim_wrapper', 'auto_scale_lr',
               'default_hooks', 'default_scope')

DEFAULT_SCOPE = 'mmaction'


def relative(path):
    return osp.relpath(path, CONFIG_DIR)


def test_every_table_row_has_a_config():
    names = {relative(p) for p in CONFIGS}
    assert set(MMACTION_ROWS) <= names
    for model in ('nl-c2d_r50', 'nl-c2d_r101'):
        for variant in ('1block', '5blocks', '10blocks'):
            assert f'nl-c2d/{model}-in1k-pre-{variant}_8xb32-8x8x1-100e_kinetics400-rgb.py' in names
    for model in ('i3d_r50', 'i3d_r101', 'nl-i3d_r50', 'nl-i3d_r101'):
        assert f'{model.split("_")[0]}/{model}-k400-32f-pre_8xb2-128x1x1-25e_kinetics400-rgb.py' \
            in names


@pytest.mark.parametrize('path', CONFIGS, ids=relative)
def test_config_follows_its_name(path):
    match = NAME.fullmatch(osp.basename(path))
    assert match, f'{relative(path)} does not follow MMAction2\'s naming pattern'
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['nlnet.openmmlab'], allow_failed_imports=False)
    assert cfg.model.backbone.type == 'VideoResNet'
    assert cfg.model.backbone.depth == int(match['backbone'][1:])
    train_sampler = cfg.train_dataloader.dataset.pipeline[1]
    assert (train_sampler.clip_len, train_sampler.frame_interval, train_sampler.num_clips) == (
        int(match['clip']), int(match['interval']), int(match['clips']))
    assert cfg.train_dataloader.batch_size == int(match['batch'])
    assert cfg.train_cfg.max_epochs == int(match['epochs'])
    assert cfg.auto_scale_lr == dict(enable=False,
                                     base_batch_size=int(match['gpus']) * int(match['batch']))
    test = [t.type for t in cfg.test_dataloader.dataset.pipeline]
    assert test[:3] == ['DecordInit', 'SampleFrames', 'DecordDecode'] and 'ThreeCrop' in test
    assert cfg.test_dataloader.dataset.pipeline[1].num_clips == 10
    assert cfg.test_dataloader.dataset.pipeline[1].clip_len == int(match['clip'])
    if match['pretrain'].startswith('k400-32f'):
        assert cfg.model.backbone.pretrained is None and cfg.model.backbone.norm_eval
        assert cfg.load_from.endswith('32x2x1-100e_kinetics400-rgb/epoch_100.pth')
    else:
        assert cfg.model.backbone.pretrained.startswith('https://download.pytorch.org/models/')


@pytest.mark.parametrize('path', CONFIGS, ids=relative)
def test_backbone_builds_with_the_named_non_local_blocks(path):
    cfg = Config.fromfile(path)
    name = relative(path)
    expected = 0
    if name.startswith('nl-'):
        expected = 10 if '10blocks' in name else 5 if ('5blocks' in name or 'nl-i3d' in name) else 1
    model = MODELS.build(dict(cfg.model.backbone, base_channels=8, pretrained=None))
    blocks = [block for _, block in model.non_local_blocks()]
    assert len(blocks) == expected
    named_mode = next((mode for mode in ('embedded-gaussian', 'dot-product', 'concatenation',
                                         'gaussian') if f'-{mode}_' in name), 'embedded-gaussian')
    if blocks:
        assert {b.mode for b in blocks} == {named_mode.replace('-', '_')}
    for scope in ('space', 'time'):
        if f'-{scope}_' in name:
            assert {b.scope for b in blocks} == {scope}
    if '-mmaction-' in name:
        assert not any(b.use_scale for b in blocks)
        assert {b.pool_position for b in blocks} == {'after'}
    elif blocks:
        assert all(b.use_scale and b.pool_position == 'before' for b in blocks)


def _plain(value):
    return value.to_dict() if hasattr(value, 'to_dict') else value


def _without_format(pipeline):
    return [{k: v for k, v in t.items() if k != 'input_format'} for t in pipeline]


def _as_mmaction(key, value):
    """``value`` of ``key`` with nlnet's broken-video handling (RobustVideoDataset, lenient in
    validation and testing, and ReadableAccMetric) replaced by MMAction2's classes."""
    if key.endswith('dataloader'):
        dataset = value['dataset']
        assert dataset.pop('type') == 'RobustVideoDataset', key
        assert dataset.pop('strict', True) is (key == 'train_dataloader'), key
        dataset['type'] = 'VideoDataset'
    if key.endswith('evaluator'):
        assert value['type'] == 'ReadableAccMetric', key
        value = dict(value, type='AccMetric')
    return value


@pytest.mark.parametrize('name', sorted(MMACTION_ROWS))
def test_mmaction2_rows_keep_mmaction2_settings(name):
    """Data, schedule, hooks and auto-scale-LR of the row equal MMAction2's config; only
    the layout of the frames differs for the TSN-style no-pool rows (NCHW there), and the
    dataset and metric are nlnet's broken-video-proof ones."""
    ours = Config.fromfile(osp.join(CONFIG_DIR, name))
    theirs = Config.fromfile(osp.join(MMACTION_CONFIG_DIR, MMACTION_ROWS[name]))
    for key in SHARED_KEYS:
        mine, ref = _as_mmaction(key, _plain(ours[key])), _plain(theirs[key])
        if key.endswith('dataloader'):
            for loader in (mine, ref):
                loader['dataset']['pipeline'] = _without_format(loader['dataset']['pipeline'])
        assert mine == ref, key
    ref_head, head = theirs.model.cls_head, ours.model.cls_head
    assert head.dropout_ratio == ref_head.dropout_ratio
    assert ours.model.data_preprocessor.mean == theirs.model.data_preprocessor.mean


def test_readme_links_every_config():
    """configs/recognition/README.md is where users find a row's config and figures."""
    with open(osp.join(CONFIG_DIR, 'README.md')) as handle:
        readme = handle.read()
    links = set(re.findall(r'\]\(([\w-]+/[\w.-]+\.py)\)', readme))
    assert links == {relative(p) for p in CONFIGS}
