"""Every shipped config states the total batch its lr was tuned for (``auto_scale_lr``), and
``tools/train.py CONFIG --auto-scale-lr`` rescales the lr of the optimizer it builds by
(processes x batch) / that total."""
import copy
import functools
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.runner import Runner
from torch import nn

from nlnet.utils import apply_auto_scale_lr

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_ROOT = osp.join(REPO, 'configs')
CONFIGS = sorted(path for path in glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True)
                 if '_base_' not in osp.relpath(path, CONFIG_ROOT).split(osp.sep))
# OpenMMLab's `{GPUs}xb{batch per GPU}` field of a config name, e.g. `_8xb32-`, `_4xb2-`.
GPUS_X_BATCH = re.compile(r'_(?P<gpus>\d+)xb(?P<batch>\d+)-')


def relative(path):
    return osp.relpath(path, CONFIG_ROOT)


@functools.lru_cache(maxsize=None)
def load(path):
    return Config.fromfile(path, import_custom_modules=False)


def declared_auto_scale_lr(path):
    """The config's auto_scale_lr, which must state base_batch_size (--auto-scale-lr needs it)."""
    auto_scale_lr = load(path).get('auto_scale_lr')
    assert auto_scale_lr is not None and 'base_batch_size' in auto_scale_lr, \
        f'{relative(path)} sets no auto_scale_lr.base_batch_size'
    return auto_scale_lr


def test_every_family_is_covered():
    families = {relative(path).split(osp.sep)[0] for path in CONFIGS}
    assert families == {'demo', 'detection', 'recognition', 'segmentation'}


@pytest.mark.parametrize('path', CONFIGS, ids=relative)
def test_config_states_the_total_batch_of_its_name(path):
    auto_scale_lr = declared_auto_scale_lr(path)
    # Off unless --auto-scale-lr asks for it: plain training uses the lr as written.
    assert auto_scale_lr.get('enable') is False
    match = GPUS_X_BATCH.search(osp.basename(path))
    if match:
        assert auto_scale_lr.base_batch_size == int(match['gpus']) * int(match['batch']), \
            relative(path)


@pytest.mark.parametrize('path', CONFIGS, ids=relative)
def test_auto_scale_lr_scales_the_built_optimizer_by_batch_over_base_batch(path, tmp_path):
    """One process with the config's batch: ``tools/train.py --auto-scale-lr`` scales the
    runner's optimizer config (``apply_auto_scale_lr``, as ``run_training`` does; mmengine's
    own scaling stays off, ``enable=False``), and the optimizer that ``Runner.train`` then
    builds (build the wrapper, then mmengine's ``scale_lr``) starts at lr x batch / base."""
    cfg = copy.deepcopy(load(path))
    # The lr does not depend on the network; a one-layer model keeps the Runner cheap and the
    # datasets are never built (the Runner reads the batch size from the loader's config).
    runner = Runner(
        model=nn.Linear(1, 1), work_dir=str(tmp_path), experiment_name=relative(path),
        train_dataloader=cfg.train_dataloader, train_cfg=cfg.train_cfg,
        optim_wrapper=cfg.optim_wrapper, auto_scale_lr=cfg.auto_scale_lr,
        default_scope=cfg.default_scope, env_cfg=dict(dist_cfg=dict(backend='gloo')))
    apply_auto_scale_lr(cfg, runner, enabled=True)
    optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(optim_wrapper, runner.auto_scale_lr)

    assert runner.world_size == 1
    config_lr = load(path).optim_wrapper.optimizer.lr
    expected = (config_lr * cfg.train_dataloader.batch_size /
                declared_auto_scale_lr(path).base_batch_size)
    lrs = [group['lr'] for group in optim_wrapper.optimizer.param_groups]
    assert lrs == pytest.approx([expected] * len(lrs), rel=1e-12)
