"""A resumed run ends exactly where the uninterrupted run ends.

Per configuration (dataloader workers 0; 2 persistent workers; two torchrun
processes over gloo) one uninterrupted, seeded, deterministic two-epoch run
writes a checkpoint after every iteration and every epoch. Each case starts a
new run from one of those checkpoints, as a run killed after it was written
would be resumed: at the epoch boundary from ``epoch_1.pth`` and inside epoch 2
from an iteration checkpoint. The resumed run's last checkpoint must equal the
uninterrupted one tensor for tensor (weights and optimizer state) and it must
log the same loss at every iteration it trains.

The one-process runs train in this process through
:func:`nlnet.engine.run_training` (each with a new runner and new dataloader
workers); the torchrun case runs ``tools/dist_train.sh`` and resumes inside
epoch 2, past the epoch boundary. The kill -9 itself is in
test_train_test_video.py.
"""
import json
import re

import pytest
import torch
from helpers.nested_equal import assert_nested_equal
from helpers.video_tools import (TRAIN_BATCH, free_port, make_video_data, run_log, run_tool,
                                 shell_tool, write_config)
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader

from nlnet.engine import run_training

NUM_TRAIN = 8
EPOCHS = 2
# A checkpoint after every iteration (mmengine's default hook) and after every epoch;
# the loss logged as it is at each iteration (no smoothing window).
EXTRA = f"""
train_cfg = dict(max_epochs={EPOCHS})
log_processor = dict(window_size=1)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=1, by_epoch=False, max_keep_ckpts=-1, save_best=None))
custom_hooks = [dict(type='CheckpointHook', interval=1, by_epoch=True, max_keep_ckpts=-1)]
"""
# configuration: (processes, train_dataloader settings)
CONFIGURATIONS = {
    'workers0': (1, dict(num_workers=0, persistent_workers=False)),
    'workers2': (1, dict(num_workers=2, persistent_workers=True)),
    'torchrun2': (2, dict(num_workers=1, persistent_workers=True)),
}


def iterations_per_epoch(processes):
    return NUM_TRAIN // (TRAIN_BATCH * processes)


def resume_checkpoint(stop, processes):
    """(checkpoint name, batches of epoch 2 it has trained) for a run stopped at ``stop``."""
    per_epoch = iterations_per_epoch(processes)
    if stop == 'epoch boundary':
        return 'epoch_1.pth', 0
    done = per_epoch // 2
    return f'iter_{per_epoch + done}.pth', done


def train(config, work_dir, configuration, resume=None, overrides=None, options=None):
    """Train as ``tools/train.py --seed 0 --deterministic --no-validate [--resume CKPT]``.

    Args:
        overrides (dict | None): config entries replaced as a whole (one process only).
        options (dict | None): ``--cfg-options`` merged in (one process only).
    """
    processes, loader = CONFIGURATIONS[configuration]
    if processes == 1:
        cfg = Config.fromfile(config)
        for key, value in (overrides or {}).items():
            setattr(cfg, key, value)
        cfg.merge_from_dict({f'train_dataloader.{key}': value for key, value in loader.items()})
        cfg.merge_from_dict(options or {})
        cfg.merge_from_dict(dict(work_dir=str(work_dir), experiment_name=work_dir.name,
                                 randomness=dict(seed=0, deterministic=True),
                                 val_cfg=None, val_dataloader=None, val_evaluator=None))
        if resume is not None:
            cfg.merge_from_dict(dict(resume=True, load_from=str(resume)))
        run_training(cfg)
        return work_dir
    cfg_options = [f'train_dataloader.{key}={value}' for key, value in loader.items()]
    resuming = ['--resume', resume] if resume is not None else []
    command = shell_tool('dist_train.sh', config, str(processes), '--work-dir', work_dir,
                         '--seed', '0', '--deterministic', '--no-validate', *resuming,
                         '--cfg-options', *cfg_options)
    run = run_tool(command, work_dir.parent, work_dir.name, env=dict(PORT=str(free_port())))
    assert run.returncode == 0, run.stderr[-4000:]
    return work_dir


def logged_losses(work_dir):
    """{iteration: loss} of the newest run under ``work_dir`` (one value per iteration)."""
    scalars = sorted(work_dir.glob('*/vis_data/scalars.json'))[-1]
    with open(scalars) as handle:
        lines = [json.loads(line) for line in handle]
    return {line['iter']: line['loss'] for line in lines if 'loss' in line}


def assert_same_checkpoints(work_dir, reference, final, iterations):
    resumed = CheckpointLoader.load_checkpoint(str(work_dir / final), 'cpu')
    expected = CheckpointLoader.load_checkpoint(str(reference / final), 'cpu')
    assert resumed['meta']['iter'] == expected['meta']['iter'] == iterations
    assert_nested_equal(resumed['state_dict'], expected['state_dict'], 'state_dict')
    assert_nested_equal(resumed['optimizer'], expected['optimizer'], 'optimizer')


@pytest.fixture(autouse=True)
def _restore_determinism():
    """The in-process runs switch deterministic algorithms on; later tests get them back off."""
    enabled = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(enabled)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp('resume')
    data = make_video_data(root / 'demo', NUM_TRAIN, 1)
    return root, write_config(root / 'nl_c2d_two_epochs.py', data, extra=EXTRA)


@pytest.fixture(scope='module')
def uninterrupted(workspace):
    """configuration -> work dir of its uninterrupted run (trained once, on first use)."""
    root, config = workspace
    runs = {}

    def work_dir(configuration):
        if configuration not in runs:
            runs[configuration] = train(config, root / f'{configuration}_uninterrupted',
                                        configuration)
        return runs[configuration]

    return work_dir


@pytest.mark.parametrize('configuration, stop', [
    ('workers0', 'epoch boundary'), ('workers0', 'inside epoch 2'),
    ('workers2', 'epoch boundary'), ('workers2', 'inside epoch 2'),
    ('torchrun2', 'inside epoch 2')])
def test_resumed_run_ends_with_the_uninterrupted_weights_and_losses(configuration, stop,
                                                                    uninterrupted, workspace):
    root, config = workspace
    reference = uninterrupted(configuration)
    processes, _ = CONFIGURATIONS[configuration]
    checkpoint, done = resume_checkpoint(stop, processes)
    work_dir = train(config, root / f'{configuration}_{stop.replace(" ", "_")}', configuration,
                     resume=reference / checkpoint)

    per_epoch = iterations_per_epoch(processes)
    assert_same_checkpoints(work_dir, reference, f'iter_{EPOCHS * per_epoch}.pth',
                            EPOCHS * per_epoch)

    losses, reference_losses = logged_losses(work_dir), logged_losses(reference)
    first = per_epoch + done + 1
    assert sorted(losses) == list(range(first, EPOCHS * per_epoch + 1))
    assert losses == {step: reference_losses[step] for step in losses}
    log = run_log(work_dir)
    trained = re.findall(rf'Epoch\(train\) \[2\]\[(\d+)/{per_epoch}\]', log)
    assert trained == [str(i) for i in range(done + 1, per_epoch + 1)]
    if done:
        assert f'Resuming inside epoch 2: skipping its first {done} batches' in log


def test_iteration_based_run_resumed_inside_it_ends_like_the_uninterrupted_one(workspace):
    """The iteration loop with an endless sampler, as the segmentation configs train: mmengine
    advances a resumed run by reading the trained batches, whose keys number them from 0."""
    root, config = workspace
    iterations = 6
    overrides = dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=iterations),
                     log_processor=dict(window_size=1, by_epoch=False), custom_hooks=[])
    sampler = {'train_dataloader.sampler': dict(type='InfiniteSampler', shuffle=True)}
    reference = train(config, root / 'iter_loop_uninterrupted', 'workers0',
                      overrides=overrides, options=sampler)
    work_dir = train(config, root / 'iter_loop_resumed', 'workers0', overrides=overrides,
                     options=sampler, resume=reference / 'iter_5.pth')
    assert_same_checkpoints(work_dir, reference, f'iter_{iterations}.pth', iterations)
    losses = logged_losses(work_dir)
    assert losses == {iterations: logged_losses(reference)[iterations]}
