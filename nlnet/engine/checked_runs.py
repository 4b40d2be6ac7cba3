"""Training and testing a config after the preflight checks (what tools/train.py and
tools/test.py run once the command line is folded into the config)."""
import logging

from mmengine.dist import is_main_process
from mmengine.logging import print_log

from ..evaluation import write_dump
from ..hooks import CheckpointCheckHook, PreemptionHook, ResumeCheckHook, atomic_checkpoint_cfg
from ..utils.checkpoint_checks import (check_checkpoint_exists, checkpoint_load_errors,
                                      resolve_checkpoint)
from ..utils.lr_scaling import apply_auto_scale_lr
from ..utils.preflight import check_config_keys, check_data_paths
from .loops import reproducible_train_cfg
from .resume_selection import select_resume_checkpoint
from .runner_build import build_datasets, build_runner

__all__ = ['run_training', 'run_testing']


def run_training(cfg, partial_load=False, auto_scale_lr=False, resume_anyway=False):
    """Check ``cfg``, build its runner with a reproducible training loop, and train.

    Checkpoints are written atomically (:mod:`~nlnet.hooks.atomic_checkpoint_hook`),
    a resume without a checkpoint or a torchrun restart continues from the newest
    intact one (:mod:`~nlnet.engine.resume_selection`), and SIGTERM / SIGUSR1 stop
    training with a checkpoint (:mod:`~nlnet.utils.preemption`).

    Args:
        cfg (Config): the full config (command line already merged).
        partial_load (bool): let ``load_from`` cover only part of the model.
        auto_scale_lr (bool): scale the lr by (processes x batch size) /
            ``cfg.auto_scale_lr.base_batch_size``; without it a run whose
            total batch is not that one warns once.
        resume_anyway (bool): resume from a checkpoint whose saved config
            differs in the model, data or schedule (see
            :class:`~nlnet.hooks.resume_check_hook.ResumeCheckHook`).
    """
    loaders = ['train_dataloader']
    if cfg.get('val_cfg') is not None and cfg.get('val_dataloader') is not None:
        loaders.append('val_dataloader')
    check_data_paths(cfg, loaders)
    check_config_keys(cfg)
    cfg.train_cfg, reproducible = reproducible_train_cfg(cfg.train_cfg)
    if not reproducible:
        print_log(f'{cfg.train_cfg.get("type")} is neither an epoch- nor an iteration-based loop: '
                  'a resumed run may draw other random numbers than an uninterrupted one',
                  logger='current', level=logging.WARNING)
    atomic_checkpoint_cfg(cfg)
    selection = select_resume_checkpoint(cfg)
    checkpoint, option = resolve_checkpoint(cfg)
    if checkpoint is not None:
        check_checkpoint_exists(checkpoint, option)

    runner = build_runner(cfg)
    selection.log()
    build_datasets(runner, ['_train_dataloader', '_val_dataloader'])
    runner.register_hook(PreemptionHook())
    if checkpoint is not None:
        strict = bool(cfg.get('resume')) or not partial_load
        runner.register_hook(CheckpointCheckHook(checkpoint, option, strict=strict))
        if cfg.get('resume'):
            runner.register_hook(ResumeCheckHook(checkpoint, resume_anyway=resume_anyway))
    apply_auto_scale_lr(cfg, runner, auto_scale_lr)
    with checkpoint_load_errors(checkpoint, option):
        runner.train()


def run_testing(cfg, checkpoint, config_file, dump=None):
    """Check ``cfg`` and ``checkpoint``, test, and write the ``dump`` file if asked.

    Args:
        cfg (Config): the full config (command line already merged; with a
            ``PlainDumpResults`` evaluator when ``dump`` is given).
        checkpoint (str): the checkpoint to test.
        config_file (str): the config's file, recorded in the dump.
        dump (str | None): ``.pkl`` file for the per-sample results.
    """
    check_data_paths(cfg, ['test_dataloader'])
    check_config_keys(cfg)
    check_checkpoint_exists(checkpoint, 'checkpoint')
    runner = build_runner(cfg)
    build_datasets(runner, ['_test_dataloader'])
    runner.register_hook(CheckpointCheckHook(checkpoint, 'checkpoint', strict=True))
    with checkpoint_load_errors(checkpoint, 'checkpoint'):
        metrics = runner.test()
    if dump is not None and is_main_process():
        write_dump(dump, runner, config_file, checkpoint, metrics)
