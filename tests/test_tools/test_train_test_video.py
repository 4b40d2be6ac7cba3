"""tools/train.py, tools/test.py and the torchrun wrappers on generated demo videos.

Runs of a one-epoch NL-C2D demo config (8 training videos in batches of 2, 5 test
videos with 10 clips x 3 crops). The tools' ``main`` runs in this process, but for
the run killed with SIGKILL and the two-process test through tools/dist_test.sh,
which are real subprocesses. One uninterrupted, seeded training run is the
reference that the test, the distributed test and the kill-and-resume runs use.
The two-process training through tools/dist_train.sh (the lr scaled by the world
size) is in test_broken_video_runs.py.
"""
import json
import os.path as osp
import pickle
import re
import signal

import numpy as np
import pytest
import torch
from helpers.tool_modules import load_tool, own_instances
from helpers.video_tools import (DEMO_CONFIG, TRAIN_BATCH, free_port, make_video_data,
                                 python_tool, run_log, run_tool, shell_tool, write_config)
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

import nlnet.openmmlab  # noqa: F401
from mmaction.registry import DATASETS, MODELS
from nlnet.datasets import BrokenVideoError

DEFAULT_SCOPE = 'mmaction'
# An odd number of test videos: two processes pad the last batch with a duplicate.
NUM_TRAIN, NUM_VAL = 8, 5
ITERS = NUM_TRAIN // TRAIN_BATCH
REPRODUCIBLE = ['--seed', '0', '--deterministic', '--auto-scale-lr']
# The config checkpoints every 2 iterations: killed after iteration 3, the run
# has lost one trained iteration and must resume from iter_2 inside the epoch.
KILL_AT = 3
TEST_VIEWS = 10 * 3

train_tool = load_tool('train.py')
test_tool = load_tool('test.py')


def train(*argv, name):
    """tools/train.py in this process; --deterministic stays with the run."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        train_tool.main([*map(str, argv), '--cfg-options', *own_instances(name)])
    finally:
        torch.use_deterministic_algorithms(deterministic)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_video_data(tmp_path_factory.mktemp('demo'), NUM_TRAIN, NUM_VAL)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp('runs')


@pytest.fixture(scope='module')
def config(data, workspace):
    return write_config(workspace / 'nl_c2d_tiny.py', data)


@pytest.fixture(scope='module')
def reference(config, workspace):
    """Work dir of an uninterrupted, seeded, deterministic one-process training run."""
    work_dir = workspace / 'reference'
    train(config, '--work-dir', work_dir, *REPRODUCIBLE, name='reference')
    return work_dir


@pytest.fixture(scope='module')
def single_test(config, reference, workspace):
    """(dump, log text) of a one-process test of the reference's final checkpoint."""
    work_dir = workspace / 'test_single'
    dump = work_dir / 'results.pkl'
    test_tool.main([config, str(reference / f'iter_{ITERS}.pth'), '--work-dir', str(work_dir),
                    '--dump', str(dump), '--cfg-options', *own_instances('test_single')])
    with open(dump, 'rb') as handle:
        return pickle.load(handle), run_log(work_dir)


def demo_lr_setting():
    """(lr, base_batch_size) of the demo config: what --auto-scale-lr starts from."""
    cfg = Config.fromfile(DEMO_CONFIG)
    return cfg.optim_wrapper.optimizer.lr, cfg.auto_scale_lr.base_batch_size


def optimizer_lrs(checkpoint):
    state = CheckpointLoader.load_checkpoint(str(checkpoint), map_location='cpu')
    return [group['lr'] for group in state['optimizer']['param_groups']]


def logged_metric(log, name):
    return float(re.findall(rf'{re.escape(name)}: ([0-9.]+)', log)[-1])


def top1(samples):
    return np.mean([int(np.argmax(s['pred_score'])) == s['gt_label'] for s in samples])


def test_training_reports_progress_with_eta_and_checkpoints(reference):
    log = run_log(reference)
    progress = re.findall(rf'Epoch\(train\) \[1\]\[(\d+)/{ITERS}\]\s+lr: \S+\s+eta: \d+:\d\d:\d\d',
                          log)
    assert progress == [str(i) for i in range(1, ITERS + 1)]
    assert osp.isfile(reference / 'iter_2.pth') and osp.isfile(reference / f'iter_{ITERS}.pth')


def test_auto_scale_lr_scales_by_real_total_batch(reference):
    base_lr, base_batch = demo_lr_setting()
    expected = base_lr * TRAIN_BATCH / base_batch
    with open(next(reference.glob('*/vis_data/scalars.json'))) as handle:
        logged = [json.loads(line)['lr'] for line in handle if '"lr"' in line]
    assert len(logged) == ITERS
    assert logged == pytest.approx([expected] * ITERS, rel=1e-9)
    lrs = optimizer_lrs(reference / f'iter_{ITERS}.pth')
    assert lrs == pytest.approx([expected] * len(lrs), rel=1e-9)


def test_dump_holds_the_logged_predictions_of_all_views(config, reference, single_test, data):
    dump, log = single_test
    samples = dump['samples']
    with open(data.val_ann) as handle:
        listed = [osp.join(data.videos('val'), line.split()[0]) for line in handle]
    assert [s['filename'] for s in samples] == listed
    assert dump['skipped'] == []
    assert top1(samples) == pytest.approx(dump['metrics']['acc/top1'], abs=1e-12)
    assert top1(samples) == pytest.approx(logged_metric(log, 'acc/top1'), abs=5e-5)

    # Recompute every prediction in this process from the checkpoint and the
    # config's test pipeline: the dump must hold the mean over 10 clips x 3 crops.
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, str(reference / f'iter_{ITERS}.pth'), map_location='cpu')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    with torch.no_grad():
        for index, sample in enumerate(samples):
            packed = dataset[index]
            assert packed['inputs'].shape[0] == TEST_VIEWS
            prediction = model.test_step(pseudo_collate([packed]))[0]
            np.testing.assert_allclose(prediction.pred_score.numpy(), sample['pred_score'],
                                       rtol=1e-5, atol=1e-6)


def test_two_process_test_equals_one_process_and_gathers_each_video_once(
        config, reference, single_test, data, workspace):
    single, _ = single_test
    work_dir = workspace / 'test_two'
    dump = work_dir / 'results.pkl'
    run = run_tool(
        shell_tool('dist_test.sh', config, reference / f'iter_{ITERS}.pth',
                   '--work-dir', work_dir, '--dump', dump, '--cfg-options',
                   f'test_dataloader.dataset.ann_file={data.broken_val_ann}',
                   'test_dataloader.dataset.skip_broken=True'),
        workspace, 'test_two', env=dict(GPUS='2', PORT=str(free_port())))
    assert run.returncode == 0, run.stderr[-4000:]
    with open(dump, 'rb') as handle:
        double = pickle.load(handle)

    assert double['metrics'] == single['metrics']
    assert [s['filename'] for s in double['samples']] == [s['filename'] for s in single['samples']]
    for ours, theirs in zip(double['samples'], single['samples']):
        np.testing.assert_allclose(ours['pred_score'], theirs['pred_score'], rtol=1e-6)
    assert sorted(s['filename'] for s in double['skipped']) == sorted(
        [data.corrupt_val, data.missing_val])
    assert all(s['reason'] for s in double['skipped'])


def test_sigkill_mid_epoch_and_resume_gives_the_uninterrupted_weights(data, reference, config,
                                                                      workspace):
    killing = write_config(
        workspace / 'nl_c2d_tiny_killed.py', data,
        extra="custom_imports = dict(imports=['nlnet.openmmlab', 'interrupt_hook'], "
        "allow_failed_imports=False)\n"
        f"custom_hooks = [dict(type='SigkillBeforeIterHook', iteration={KILL_AT})]\n")
    work_dir = workspace / 'interrupted'
    run = run_tool(python_tool('train.py', killing, '--work-dir', work_dir, *REPRODUCIBLE),
                   workspace, 'killed')
    assert run.returncode == -signal.SIGKILL, run.stderr[-4000:]
    assert osp.isfile(work_dir / 'iter_2.pth') and not osp.exists(work_dir / f'iter_{ITERS}.pth')

    train(config, '--work-dir', work_dir, '--resume', *REPRODUCIBLE, name='resumed')
    log = run_log(work_dir)
    assert 'Resuming inside epoch 1: skipping its first 2 batches' in log
    assert re.findall(rf'Epoch\(train\) \[1\]\[(\d+)/{ITERS}\]', log) == ['3', '4']

    resumed = CheckpointLoader.load_checkpoint(str(work_dir / f'iter_{ITERS}.pth'), 'cpu')
    uninterrupted = CheckpointLoader.load_checkpoint(str(reference / f'iter_{ITERS}.pth'), 'cpu')
    assert resumed['meta']['iter'] == uninterrupted['meta']['iter'] == ITERS
    assert resumed['state_dict'].keys() == uninterrupted['state_dict'].keys()
    different = [key for key, value in resumed['state_dict'].items()
                 if not torch.equal(value, uninterrupted['state_dict'][key])]
    assert different == []


def test_broken_training_videos_are_logged_and_training_completes_without_seed(data, workspace):
    config = write_config(workspace / 'nl_c2d_tiny_broken.py', data,
                          train_ann=data.broken_train_ann)
    work_dir = workspace / 'broken_train'
    train(config, '--work-dir', work_dir, name='broken_train')
    log = run_log(work_dir)
    assert f'broken video {data.corrupt_train}' in log
    assert f'broken video {data.missing_train} (file not found)' in log
    assert re.search(r'\bseed: \d+', log), 'the randomly drawn seed is not logged'
    assert osp.isfile(work_dir / 'last_checkpoint')


def test_broken_test_video_stops_testing_with_its_name(config, reference, data, workspace):
    with pytest.raises(BrokenVideoError, match=f'cannot read video {re.escape(data.corrupt_val)}'):
        test_tool.main([config, str(reference / f'iter_{ITERS}.pth'), '--work-dir',
                        str(workspace / 'broken_test'), '--cfg-options',
                        f'test_dataloader.dataset.ann_file={data.broken_val_ann}',
                        *own_instances('broken_test')])
