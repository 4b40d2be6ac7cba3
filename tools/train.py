"""Train any nlnet config (video recognition, segmentation, detection) with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--seed N] [--deterministic] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}]

Before training starts the run fails, naming the path or config key, on a
missing data root / annotation file / data directory, on a config key that the
class it configures does not accept (or an unknown ``type``), and on a
``load_from`` / ``--resume`` checkpoint that is truncated or does not fit the
model.
"""
import nlnet  # noqa: F401,I001  (first: registers nlnet and applies the stack fixes)

import argparse
import logging
import os
import os.path as osp
import random
import sys

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.device import is_cuda_available, is_mlu_available, is_npu_available
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from preflight import (PreflightError, build_datasets, build_runner, check_checkpoint,
                       check_data_paths, close_distributed, config_errors_explained,
                       exit_after_distributed_run, init_cpu_distributed, resolve_checkpoint)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model with an nlnet config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; without a value, from the latest checkpoint of the '
        'work dir (a fresh start if there is none)')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU only)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate on the validation set during training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by (GPUs x batch_size) / auto_scale_lr.base_batch_size')
    parser.add_argument('--partial-load', action='store_true',
                        help='let load_from cover only part of the model (fine-tuning with a new '
                        'head); weights with a different shape are still an error')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument('--diff-rank-seed', action='store_true',
                        help='use a different seed on each rank')
    parser.add_argument('--deterministic', action='store_true',
                        help='use deterministic algorithms (torch.use_deterministic_algorithms)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs such as '
        'train_dataloader.batch_size=4 or "model.backbone.stage_blocks=(1,1,1,1)"')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Fold the command line into the config (command line wins)."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        if not (is_cuda_available() or is_npu_available() or is_mlu_available()):
            raise PreflightError('--amp: mixed precision training needs a GPU (or NPU/MLU); '
                                 'none is available')
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise PreflightError(f'--amp: optim_wrapper.type is {wrapper!r}; only OptimWrapper '
                                 'can be switched to AmpOptimWrapper')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        if not isinstance(cfg.get('auto_scale_lr'), dict) or \
                'base_batch_size' not in cfg.auto_scale_lr:
            raise PreflightError('--auto-scale-lr: the config needs '
                                 'auto_scale_lr = dict(base_batch_size=<total batch size the lr '
                                 'was tuned for>)')
        cfg.auto_scale_lr.enable = True

    randomness = dict(cfg.get('randomness') or {})
    randomness.setdefault('seed', None)
    if args.seed is not None:
        randomness['seed'] = args.seed
    if args.diff_rank_seed:
        randomness['diff_rank_seed'] = True
    if args.deterministic:
        randomness['deterministic'] = True
    cfg.randomness = randomness

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def reseed(seed, rank, index):
    """Seed python, numpy and torch from (seed, rank, index) alone."""
    value = int(np.random.SeedSequence([seed, rank, index]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


class _ReseedingIterator:
    """The iteration-based loop's batch iterator, reseeding before the ``k``-th batch."""

    def __init__(self, iterator, seed, rank):
        self._iterator = iterator
        self._seed = seed
        self._rank = rank
        self._index = 0

    def __iter__(self):
        return self

    def __next__(self):
        reseed(self._seed, self._rank, self._index)
        self._index += 1
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


class _ResumableEpochLoader:
    """The epoch-based loop's dataloader: reseeds per batch, skips a resumed epoch's done batches.

    mmengine restarts an interrupted epoch from its first batch while keeping
    the iteration count, which trains the first part of the epoch twice. Here
    the batches already trained are fetched (so that sampler and worker random
    streams advance exactly as before) and dropped.

    Attributes:
        skipped (int): batches dropped at the start of the current epoch.
    """

    def __init__(self, loop, seed, rank):
        self._loop = loop
        self._dataloader = loop.dataloader
        self._seed = seed
        self._rank = rank
        self.skipped = 0

    def __len__(self):
        return len(self._dataloader)

    def __getattr__(self, name):
        return getattr(self._dataloader, name)

    def __iter__(self):
        first = self._loop.epoch * len(self._dataloader)
        done = max(self._loop.iter - first, 0)
        self.skipped = done
        if done:
            print_log(f'Resuming inside epoch {self._loop.epoch + 1}: skipping its first {done} '
                      'batches, which were trained before the interruption', logger='current')
        reseed(self._seed, self._rank, first)
        iterator = iter(self._dataloader)
        for index in range(len(self._dataloader)):
            reseed(self._seed, self._rank, first + index)
            try:
                batch = next(iterator)
            except StopIteration:
                return
            if index >= done:
                yield batch


class ReproducibleResumeHook(Hook):
    """Makes a resumed run continue exactly like the uninterrupted one.

    A checkpoint restores weights, optimizer, schedulers and the iteration
    count, but not the state of the python/numpy/torch random generators that
    drive augmentation (in the main process when ``num_workers=0``), dropout
    and refetching of broken samples. Reseeding before every training batch
    from (seed, rank, iteration) makes those draws a function of the iteration
    alone; the sampler order and the dataloader workers' own generators are
    already reproduced by replaying the skipped batches.
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner):
        loop = runner.train_loop
        seed = runner.seed if runner.seed is not None else 0
        if isinstance(loop, IterBasedTrainLoop):
            if not isinstance(loop.dataloader_iterator, _ReseedingIterator):
                loop.dataloader_iterator = _ReseedingIterator(loop.dataloader_iterator, seed,
                                                              runner.rank)
        elif isinstance(loop, EpochBasedTrainLoop):
            if not isinstance(loop.dataloader, _ResumableEpochLoader):
                loader = _ResumableEpochLoader(loop, seed, runner.rank)
                loop.dataloader = loader
                run_iter = loop.run_iter

                # The loop numbers the batches it receives from 0; hooks need their
                # position in the epoch (the log's [epoch][i/n], end-of-epoch checks).
                def run_iter_in_epoch(idx, data_batch):
                    run_iter(idx + loader.skipped, data_batch)

                loop.run_iter = run_iter_in_epoch
        else:
            print_log(f'{type(loop).__name__} is neither an epoch- nor an iteration-based loop: '
                      'a resumed run may draw other random numbers than an uninterrupted one',
                      logger='current', level=logging.WARNING)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)

    loaders = ['train_dataloader']
    if cfg.get('val_cfg') is not None and cfg.get('val_dataloader') is not None:
        loaders.append('val_dataloader')
    check_data_paths(cfg, loaders)
    init_cpu_distributed(cfg, args.launcher)
    try:
        train(cfg, args)
    finally:
        close_distributed()


def train(cfg, args):
    """Build the runner, check its datasets and checkpoint, then train."""
    runner = build_runner(cfg)
    build_datasets(runner, ['_train_dataloader', '_val_dataloader'], cfg)
    checkpoint, option = resolve_checkpoint(cfg)
    if checkpoint is not None:
        strict = cfg.get('resume') or not args.partial_load
        check_checkpoint(runner.model, checkpoint, option, strict=strict)
    runner.register_hook(ReproducibleResumeHook())
    with config_errors_explained(cfg):
        runner.train()


if __name__ == '__main__':
    try:
        main()
    except PreflightError as error:
        print(f'{osp.basename(sys.argv[0])}: error: {error}', file=sys.stderr)
        sys.exit(2)
    exit_after_distributed_run()
