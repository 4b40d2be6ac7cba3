"""Training runs say what they do: the lr for the real batch, and where a resumed run continues.

In-process runs of :func:`nlnet.engine.run_training` on a one-epoch NL-C2D demo
config (4 generated videos in batches of 2, a checkpoint after each iteration).
ResumeCheckHook's own cases (what differs, unreadable saved configs) are in
tests/test_hooks/test_resume_check_hook.py.
"""
import logging
import re

import pytest
from helpers.video_tools import TRAIN_BATCH, make_video_data, run_log, write_config
from mmengine.config import Config

from nlnet.engine import run_training
from nlnet.utils import PreflightError, auto_scale_lr_report

NUM_TRAIN = 4
BASE_LR, BASE_BATCH = 2e-3, 16  # the demo config's lr and auto_scale_lr.base_batch_size
EXTRA = """
default_hooks = dict(checkpoint=dict(interval=1, by_epoch=False, max_keep_ckpts=-1))
"""


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    root = tmp_path_factory.mktemp('messages')
    data = make_video_data(root / 'demo', NUM_TRAIN, 1)
    return write_config(root / 'nl_c2d_messages.py', data, extra=EXTRA)


def train(config, work_dir, options=None, **kwargs):
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(work_dir=str(work_dir), experiment_name=work_dir.name,
                             launcher='none', val_cfg=None, val_dataloader=None,
                             val_evaluator=None, randomness=dict(seed=0)))
    cfg.merge_from_dict(options or {})
    run_training(cfg, **kwargs)
    return run_log(work_dir)


@pytest.fixture(scope='module')
def first_run(config, tmp_path_factory):
    """(work dir, log) of a run without --auto-scale-lr: batch 2 where the lr is for 16."""
    work_dir = tmp_path_factory.mktemp('first')
    return work_dir, train(config, work_dir)


def test_without_the_flag_one_warning_says_what_auto_scale_lr_would_change(first_run):
    _, log = first_run
    warnings = [line for line in log.splitlines() if 'auto-scale-lr' in line]
    assert len(warnings) == 1 and ' - WARNING - ' in warnings[0]
    assert (f'base batch {BASE_BATCH} (auto_scale_lr.base_batch_size), real batch '
            f'{TRAIN_BATCH} (1 processes x {TRAIN_BATCH} per process): training with lr '
            f'{BASE_LR:g}') in warnings[0]
    assert f'--auto-scale-lr would train with lr {BASE_LR * TRAIN_BATCH / BASE_BATCH:g}' in \
        warnings[0]


def test_auto_scale_lr_logs_both_batches_and_the_lr_before_and_after(config, tmp_path):
    log = train(config, tmp_path / 'scaled', auto_scale_lr=True)
    lines = [line for line in log.splitlines() if 'auto-scale-lr' in line]
    assert len(lines) == 1 and ' - INFO - ' in lines[0]
    assert lines[0].endswith(
        f'--auto-scale-lr: base batch {BASE_BATCH} (auto_scale_lr.base_batch_size), real batch '
        f'{TRAIN_BATCH} (1 processes x {TRAIN_BATCH} per process): lr {BASE_LR:g} -> '
        f'{BASE_LR * TRAIN_BATCH / BASE_BATCH:g}')


def test_no_lr_message_when_the_real_batch_is_the_base_batch():
    assert auto_scale_lr_report(dict(optimizer=dict(lr=0.1)), 2, 8, 16, enabled=False) is None
    level, message = auto_scale_lr_report(dict(optimizer=dict(lr=0.1)), 4, 8, 16, enabled=False)
    assert level == logging.WARNING and 'real batch 32 (4 processes x 8 per process)' in message


def test_resume_logs_where_it_continues_despite_other_work_dir_and_hooks(config, first_run,
                                                                         tmp_path):
    work_dir, _ = first_run
    log = train(config, tmp_path / 'resumed',
                options=dict(resume=True, load_from=str(work_dir / 'iter_1.pth'),
                             default_hooks=dict(logger=dict(interval=5))))
    assert (f'--resume: continuing from {work_dir / "iter_1.pth"} after epoch 0, iteration 1 '
            '(the next one trained is iteration 2)') in log
    assert re.findall(r'Epoch\(train\) \[1\]\[(\d+)/2\]', log) == ['2']


CHANGED = {
    'model.cls_head.dropout_ratio': (0.0, 0.5),
    'train_dataloader.dataset.pipeline[1].clip_len': (8, 4),
    'optim_wrapper.optimizer.lr': (BASE_LR, 0.1),
}


def test_resume_refuses_another_model_data_or_schedule_naming_keys_and_values(
        config, first_run, tmp_path):
    work_dir, _ = first_run
    checkpoint = str(work_dir / 'iter_1.pth')
    cfg = Config.fromfile(config)
    cfg.model.cls_head.dropout_ratio = 0.5
    cfg.train_dataloader.dataset.pipeline[1].clip_len = 4
    cfg.optim_wrapper.optimizer.lr = 0.1
    cfg.merge_from_dict(dict(work_dir=str(tmp_path / 'refused'), experiment_name='refused',
                             launcher='none', val_cfg=None,
                             val_dataloader=None, val_evaluator=None, resume=True,
                             load_from=checkpoint))
    with pytest.raises(PreflightError) as error:
        run_training(cfg)
    message = str(error.value)
    assert message.startswith(f'--resume: the config of {checkpoint} differs')
    for key, (before, after) in CHANGED.items():
        assert f'  {key}: {before!r} in the checkpoint, {after!r} now' in message
    assert '--resume-anyway' in message
    assert not (tmp_path / 'refused' / 'iter_2.pth').exists()

    cfg.merge_from_dict(dict(work_dir=str(tmp_path / 'anyway'), experiment_name='anyway'))
    run_training(cfg, resume_anyway=True)
    log = run_log(tmp_path / 'anyway')
    assert 'resuming all the same (--resume-anyway)' in log
    assert "model.cls_head.dropout_ratio: 0.0 in the checkpoint, 0.5 now" in log
    assert (tmp_path / 'anyway' / 'iter_2.pth').exists()

