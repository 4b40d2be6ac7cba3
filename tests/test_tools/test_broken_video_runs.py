"""Training, validation and testing through the tools on a Kinetics-layout set with every kind
of broken video mixed in (missing, empty, truncated, not a video, zero frames).

Two runs train the tiny demo NL-C2D: one process with 2 persistent dataloader
workers for 3 epochs (also the fd / worker-memory health check from epoch 2 to
epoch 3; a subprocess, as workers forked from the test process would grow by its
copy-on-write pages), and 2 torchrun processes for one epoch through
tools/dist_train.sh
with --auto-scale-lr (also the lr scaled by the world size). Both validate after
every epoch on a list with the same kinds of broken files. Testing runs
mmengine's test loop in this process.
"""
import json
import os
import os.path as osp
import re
from types import SimpleNamespace

import pytest
from helpers.broken_videos import BROKEN_KINDS, add_broken_videos
from helpers.video_tools import (DEMO_CONFIG, HELPERS, ROOT, TRAIN_BATCH, free_port,
                                 make_video_data, python_tool, run_log, run_tool, shell_tool,
                                 write_config)
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

from nlnet.datasets import BrokenVideoError
from nlnet.hooks.broken_video_hook import read_broken_list

# 7 readable + 5 broken = 12 listed: full batches of 2 on one or two processes.
NUM_TRAIN, NUM_VAL = 7, 5
LISTED = NUM_TRAIN + len(BROKEN_KINDS)
EPOCHS = 3
# Growth allowed from the end of epoch 2 to the end of epoch 3 (measured: 0-40 KiB, no fd).
# Each worker reads 6 videos an epoch; a decord reader left open in each read added
# 0.25 MiB per read (and keeps its file open: one fd each).
MAX_NEW_FDS = 2
MAX_WORKER_GROWTH_KIB = 1024
# The demo's training pipeline behind a transform that logs a warning from each worker.
TRAIN_PIPELINE = Config.fromfile(DEMO_CONFIG).train_pipeline
ENV = dict(PYTHONPATH=os.pathsep.join([ROOT, HELPERS]))


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    videos = make_video_data(tmp_path_factory.mktemp('kinetics_like'), NUM_TRAIN, NUM_VAL)
    train_ann, train_broken = add_broken_videos(videos.root, 'train', videos.train_ann)
    val_ann, val_broken = add_broken_videos(videos.root, 'val', videos.val_ann)
    return SimpleNamespace(videos=videos, train_ann=train_ann, val_ann=val_ann,
                           train_broken=train_broken, val_broken=val_broken)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    return tmp_path_factory.mktemp('runs')


def config(data, workspace, name, epochs, workers):
    extra = f"""
custom_imports = dict(imports=['nlnet.openmmlab', 'run_health_probe'], allow_failed_imports=False)
train_dataloader.update(num_workers={workers}, persistent_workers=True)
train_dataloader['dataset']['pipeline'] = [dict(type='WarnFromWorker')] + {TRAIN_PIPELINE!r}
val_dataloader['dataset'].update(ann_file={data.val_ann!r}, strict=False)
val_evaluator = dict(type='ReadableAccMetric')
train_cfg = dict(max_epochs={epochs}, val_begin=1, val_interval=1)
default_hooks['checkpoint'].update(interval=-1, save_last=True)
custom_hooks = [dict(type='RankLogHook'), dict(type='BrokenVideoHook'),
                dict(type='RunHealthProbeHook')]
"""
    return write_config(workspace / f'{name}.py', data.videos, train_ann=data.train_ann,
                        extra=extra)


@pytest.fixture(scope='module')
def two_workers(data, workspace):
    """(work dir, log) of 3 epochs on one process with 2 persistent dataloader workers."""
    work_dir = workspace / 'two_workers'
    run = run_tool(python_tool('train.py', config(data, workspace, 'two_workers', EPOCHS, 2),
                               '--work-dir', work_dir), workspace, 'two_workers', env=ENV)
    assert run.returncode == 0, run.stderr[-4000:]
    return work_dir, run_log(work_dir)


@pytest.fixture(scope='module')
def two_processes(data, workspace):
    """(work dir, log) of one epoch on 2 torchrun processes, one dataloader worker each."""
    work_dir = workspace / 'two_processes'
    run = run_tool(shell_tool('dist_train.sh', config(data, workspace, 'two_processes', 1, 1),
                              '2', '--work-dir', work_dir, '--auto-scale-lr', '--seed', '0'),
                   workspace, 'two_processes',
                   env=dict(ENV, PORT=str(free_port())))
    assert run.returncode == 0, run.stderr[-4000:]
    return work_dir, run_log(work_dir)


def health(work_dir, rank):
    with open(osp.join(work_dir, f'health_rank{rank}.json')) as handle:
        return json.load(handle)


def naming(log, rank, epoch, path):
    return re.findall(rf'\[rank {rank}\] epoch {epoch}: broken video {re.escape(path)} '
                      r'\((.+)\); replaced by another sample', log)


def test_every_epoch_names_each_broken_video_once_and_keeps_full_batches(data, two_workers):
    work_dir, log = two_workers
    for epoch in range(1, EPOCHS + 1):
        assert re.search(rf'Epoch\(train\) \[{epoch}\]\[{LISTED // 2}/{LISTED // 2}\]', log)
        for kind, path in data.train_broken.items():
            reasons = naming(log, 0, epoch, path)
            assert len(reasons) == 1, (kind, epoch, reasons)
        assert naming(log, 0, epoch, data.train_broken['missing']) == ['file not found']
        assert naming(log, 0, epoch, data.train_broken['empty']) == ['empty file (0 bytes)']
        assert (f'epoch {epoch}: {len(BROKEN_KINDS)} broken videos replaced by other samples '
                f'(rank 0: {len(BROKEN_KINDS)}); list in {work_dir}/broken_videos.txt') in log
    assert health(work_dir, 0)['batch_sizes'] == [2] * (EPOCHS * LISTED // 2)


def test_validation_scores_readable_videos_and_lists_the_broken_ones(data, two_workers):
    work_dir, log = two_workers
    metric_lines = re.findall(r'Epoch\(val\) \[(\d+)\]\[\d+/\d+\] +acc/top1.*', log)
    assert metric_lines == [str(epoch) for epoch in range(1, EPOCHS + 1)]
    for epoch in range(1, EPOCHS + 1):
        line = re.search(rf'Epoch\(val\) \[{epoch}\]\[\d+/\d+\] +acc/top1.*', log)[0]
        assert f'num_videos: {NUM_VAL}' in line and f'num_broken: {len(BROKEN_KINDS)}' in line
        for path in data.val_broken.values():
            assert len(re.findall(rf'validation after epoch {epoch}: broken video '
                                  rf'{re.escape(path)} \(', log)) == 1
        assert (f'validation after epoch {epoch}: {len(BROKEN_KINDS)} of '
                f'{NUM_VAL + len(BROKEN_KINDS)} videos are broken and left out of the metrics; '
                f'list in {work_dir}/broken_videos.txt') in log
    listed = read_broken_list(work_dir / 'broken_videos.txt')
    assert set(listed) == set(data.train_broken.values()) | set(data.val_broken.values())
    assert listed[data.val_broken['missing']] == 'file not found'


def test_worker_warnings_reach_the_log_tagged(two_workers):
    _, log = two_workers
    workers = set(re.findall(r'\[rank 0 worker (\d)\] probe warning from dataloader worker', log))
    assert workers == {'0', '1'}


def test_persistent_workers_keep_fds_and_memory_from_epoch_2_to_3(two_workers):
    work_dir, _ = two_workers
    second, third = health(work_dir, 0)['epochs'][1:3]
    assert third['fds'] - second['fds'] <= MAX_NEW_FDS, (second, third)
    assert len(second['workers']) == 2 and second['workers'].keys() == third['workers'].keys()
    growth = {pid: third['workers'][pid] - rss for pid, rss in second['workers'].items()}
    assert max(growth.values()) <= MAX_WORKER_GROWTH_KIB, growth
    new_fds = {pid: third['worker_fds'][pid] - fds for pid, fds in second['worker_fds'].items()}
    assert max(new_fds.values()) <= MAX_NEW_FDS, new_fds


def test_two_processes_report_broken_videos_from_every_rank(data, two_processes):
    work_dir, log = two_processes
    per_rank = LISTED // 4
    assert re.search(rf'Epoch\(train\) \[1\]\[{per_rank}/{per_rank}\]', log)
    named = {rank: {path for path in data.train_broken.values() if naming(log, rank, 1, path)}
             for rank in (0, 1)}
    assert named[0] and named[1], 'each rank draws some of the broken videos'
    assert named[0] | named[1] == set(data.train_broken.values())
    for rank in (0, 1):
        for path in data.train_broken.values():
            assert len(naming(log, rank, 1, path)) <= 1
        assert health(work_dir, rank)['batch_sizes'] == [2] * per_rank
        assert re.search(rf'\[rank {rank} worker 0\] probe warning from dataloader worker', log)
    counts = re.search(r'epoch 1: (\d+) broken videos replaced by other samples '
                       r'\(rank 0: (\d+), rank 1: (\d+)\)', log)
    assert counts and int(counts[1]) == len(BROKEN_KINDS)
    assert (int(counts[2]), int(counts[3])) == (len(named[0]), len(named[1]))
    val_line = re.search(r'Epoch\(val\) \[1\]\[\d+/\d+\] +acc/top1.*', log)[0]
    assert f'num_videos: {NUM_VAL}' in val_line and f'num_broken: {len(BROKEN_KINDS)}' in val_line


def test_two_process_training_scales_lr_by_world_size(two_processes):
    work_dir, _ = two_processes
    with open(work_dir / 'last_checkpoint') as handle:
        state = CheckpointLoader.load_checkpoint(handle.read().strip(), map_location='cpu')
    assert state['meta']['iter'] == LISTED // 4
    cfg = Config.fromfile(DEMO_CONFIG)
    expected = cfg.optim_wrapper.optimizer.lr * 2 * TRAIN_BATCH / cfg.auto_scale_lr.base_batch_size
    lrs = [group['lr'] for group in state['optimizer']['param_groups']]
    assert lrs == pytest.approx([expected] * len(lrs), rel=1e-9)


def run_test(data, work_dir, ann_file, strict):
    """Metrics of mmengine's test loop over the demo config's 10 clips x 3 crops on ``ann_file``
    (model initialised from seed 0: the same weights in every call)."""
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.work_dir = str(work_dir)
    # Its own logger: two test runs may start in the same second.
    cfg.experiment_name = osp.basename(str(work_dir))
    cfg.randomness = dict(seed=0)
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    cfg.test_dataloader.dataset.update(
        ann_file=ann_file, data_prefix=dict(video=data.videos.videos('val')), strict=strict)
    cfg.test_evaluator = dict(type='ReadableAccMetric')
    return Runner.from_cfg(cfg).test()


def test_testing_scores_exactly_the_readable_videos(data, tmp_path):
    clean = run_test(data, tmp_path / 'clean', data.videos.val_ann, strict=False)
    mixed = run_test(data, tmp_path / 'mixed', data.val_ann, strict=False)
    assert clean['num_videos'] == mixed['num_videos'] == NUM_VAL
    assert (clean['num_broken'], mixed['num_broken']) == (0, len(BROKEN_KINDS))
    for key in ('acc/top1', 'acc/top5', 'acc/mean1'):
        assert mixed[key] == clean[key], key
    listed = read_broken_list(tmp_path / 'mixed' / 'broken_videos.txt')
    assert set(listed) == set(data.val_broken.values())
    assert 'testing: broken video' in run_log(tmp_path / 'mixed')


def test_strict_testing_stops_naming_the_first_broken_video(data, tmp_path):
    # The list's first broken entry (second line) is the missing file.
    with pytest.raises(BrokenVideoError,
                       match=f'cannot read video {re.escape(data.val_broken["missing"])}: '
                       'file not found'):
        run_test(data, tmp_path, data.val_ann, strict=True)
