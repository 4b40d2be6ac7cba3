"""The NonLocalNet segmentation configs reproduce MMSeg's rows of the seed table.

Each of the 16 rows (R-50-D8 / R-101-D8; Cityscapes 512x1024 and 769x769 at 40k/80k,
ADE20K 512x512 at 80k/160k, VOC12aug 512x512 at 20k/40k) must resolve to MMSeg's own
config of that row (shipped with mmsegmentation) except for the decode head type and
nlnet's custom import (NonLocalHead's ``non_local_cfg`` read as NLHead's reduction,
use_scale and mode), build a model with MMSeg's parameter count and state-dict
layout, and the ms+flip configs must wrap exactly that model in MMSeg's TTA. Every
config, row or ms+flip, builds its model and its data pipelines.
"""
import copy
import functools
import glob
import os.path as osp

import mmseg
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import init_default_scope

import nlnet.openmmlab  # noqa: F401  (registers NonLocalHead)
from mmseg.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'segmentation', 'nonlocal_net')
MMSEG_CONFIG_DIR = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'nonlocal_net')

# The seed table's rows: (backbone, GPUs x batch, schedule, dataset-crop, has an ms+flip mIoU).
ROWS = [(arch, batch, schedule, data, data != 'cityscapes-512x1024')
        for arch in ('r50', 'r101')
        for batch, schedule, data in (
            ('4xb2', '40k', 'cityscapes-512x1024'), ('4xb2', '80k', 'cityscapes-512x1024'),
            ('4xb2', '40k', 'cityscapes-769x769'), ('4xb2', '80k', 'cityscapes-769x769'),
            ('4xb4', '80k', 'ade20k-512x512'), ('4xb4', '160k', 'ade20k-512x512'),
            ('4xb4', '20k', 'voc12aug-512x512'), ('4xb4', '40k', 'voc12aug-512x512'))]
NAMES = [f'nonlocal_{arch}-d8_{batch}-{schedule}_{data}.py'
         for arch, batch, schedule, data, _ in ROWS]
TTA_NAMES = [name.replace('.py', '_ms-flip.py') for name, row in zip(NAMES, ROWS) if row[-1]]
# (depth, classes) -> one model per distinct architecture in the table.
ARCHS = {(50, 19), (101, 19), (50, 150), (101, 150), (50, 21), (101, 21)}

needs_mmseg_configs = pytest.mark.skipif(
    not osp.isdir(MMSEG_CONFIG_DIR), reason='this mmsegmentation install ships no configs')


@functools.lru_cache(maxsize=None)
def _load(path):
    return Config.fromfile(path, import_custom_modules=False)


def load(path):
    """A fresh copy of the parsed config (parsing dominates these tests' time)."""
    return copy.deepcopy(_load(path))


def differences(ours, ref, path='cfg'):
    """Paths at which two plain config trees differ."""
    if isinstance(ours, dict) and isinstance(ref, dict):
        out = [f'{path}.{k}' for k in set(ours) ^ set(ref)]
        for key in set(ours) & set(ref):
            out += differences(ours[key], ref[key], f'{path}.{key}')
        return out
    if isinstance(ours, (list, tuple)) and isinstance(ref, (list, tuple)) and len(ours) == len(ref):
        return [d for i, (a, b) in enumerate(zip(ours, ref))
                for d in differences(a, b, f'{path}[{i}]')]
    return [] if ours == ref else [path]


def test_every_row_and_tta_config_exists_and_nothing_else():
    assert len(NAMES) == 16 and len(TTA_NAMES) == 12
    on_disk = sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))
    assert on_disk == sorted(NAMES + TTA_NAMES)


@pytest.mark.parametrize('name', NAMES)
def test_row_config_runs_nlnet_head_in_mmseg_scope(name):
    cfg = load(osp.join(CONFIG_DIR, name))
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports == dict(imports=['nlnet.openmmlab'], allow_failed_imports=False)
    assert cfg.model.decode_head.type == 'NonLocalHead'


def as_mmseg_head(head):
    """NonLocalHead's ``non_local_cfg`` spelt as NLHead's keyword arguments."""
    head = dict(head)
    head.update(head.pop('non_local_cfg', {}))
    return head


@needs_mmseg_configs
@pytest.mark.parametrize('name', NAMES)
def test_row_config_equals_mmseg_except_head_type(name):
    ours = load(osp.join(CONFIG_DIR, name)).to_dict()
    ref = load(osp.join(MMSEG_CONFIG_DIR, name)).to_dict()
    ours['model']['decode_head'] = as_mmseg_head(ours['model']['decode_head'])
    assert ref['model']['decode_head']['type'] == 'NLHead'
    # Schedules, batch sizes, crops, pipelines, slide/whole inference, heads: all MMSeg's.
    # MMSeg's configs set no auto_scale_lr; ours state the batch the lr was tuned for.
    assert sorted(differences(ours, ref)) == [
        'cfg.auto_scale_lr', 'cfg.custom_imports', 'cfg.model.decode_head.type']


@pytest.mark.parametrize('name', TTA_NAMES)
def test_ms_flip_config_wraps_the_row_model(name):
    cfg = load(osp.join(CONFIG_DIR, name))
    row = load(osp.join(CONFIG_DIR, name.replace('_ms-flip.py', '.py')))
    assert cfg.model.type == 'SegTTAModel'
    assert cfg.model.module == row.model
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert pipeline == row.tta_pipeline
    aug = pipeline[1]
    assert aug.type == 'TestTimeAug'
    assert [t.scale_factor for t in aug.transforms[0]] == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert [t.prob for t in aug.transforms[1]] == [0., 1.]


def _model_on_meta(cfg):
    """Build cfg.model without allocating its weights (no pretrained download)."""
    model_cfg = cfg.model.copy()
    segmentor = model_cfg.module if model_cfg.type == 'SegTTAModel' else model_cfg
    segmentor.pretrained = None
    init_default_scope('mmseg')
    with torch.device('meta'):
        return MODELS.build(model_cfg)


def _arch_rows():
    rows = {}
    for name in NAMES:
        cfg = load(osp.join(CONFIG_DIR, name))
        rows.setdefault((cfg.model.backbone.depth, cfg.model.decode_head.num_classes), name)
    assert set(rows) == ARCHS
    return sorted(rows.items())


@needs_mmseg_configs
@pytest.mark.parametrize('arch,name', _arch_rows(), ids=lambda v: str(v))
def test_params_and_state_dict_layout_equal_mmseg(arch, name):
    ours = _model_on_meta(load(osp.join(CONFIG_DIR, name)))
    ref = _model_on_meta(load(osp.join(MMSEG_CONFIG_DIR, name)))
    assert type(ours.decode_head).__name__ == 'NonLocalHead'
    assert type(ref.decode_head).__name__ == 'NLHead'
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    # Same keys and shapes: MMSeg's checkpoints of this row load as they are.
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in ref.state_dict().items()}


@pytest.mark.parametrize('name', NAMES + TTA_NAMES)
def test_every_config_builds_its_model_and_pipelines(name):
    """Every pipeline transform and the (TTA-wrapped) model build in the real registries."""
    cfg = load(osp.join(CONFIG_DIR, name))
    model = _model_on_meta(cfg)
    expected = 'SegTTAModel' if name in TTA_NAMES else 'EncoderDecoder'
    assert type(model).__name__ == expected
    init_default_scope('mmseg')
    loaders = [cfg.test_dataloader] + ([] if name in TTA_NAMES else [cfg.train_dataloader])
    for loader in loaders:
        dataset = loader.dataset
        for leaf in dataset.get('datasets', [dataset]):
            assert len(Compose(leaf.pipeline).transforms) == len(leaf.pipeline)
