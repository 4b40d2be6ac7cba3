"""Train any nlnet config (video recognition, segmentation, detection) with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--resume-anyway] [--amp]
        [--auto-scale-lr] [--seed N] [--deterministic] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}]

Before training starts the run fails, naming the path or config key, on a
config file that does not exist or has a syntax error (file and line), a value
of the wrong type or range among those commonly overridden (lr, momentum, weight
decay, batch size, workers, epochs / iterations, clip length, crop size,
checkpoint interval) or a work dir that cannot be created
(:mod:`nlnet.utils.config_values`), on a
missing data root / annotation file / data directory, on a config key that the
class it configures does not accept (or an unknown ``type``), and on a
``load_from`` / ``--resume`` checkpoint that is truncated or does not fit the
model (:mod:`nlnet.utils.preflight`, :mod:`nlnet.utils.checkpoint_checks`), or a
``--resume`` checkpoint saved by a
run with another model, data or schedule (:mod:`nlnet.hooks.resume_check_hook`).
Training runs nlnet's reproducible loops
(:mod:`nlnet.engine.loops`).
"""
import nlnet.openmmlab  # noqa: F401,I001  (first: registers nlnet and applies the stack fixes)

import argparse
import os
import os.path as osp

from mmengine.config import DictAction

from nlnet.engine import amp_optim_wrapper, run_tool_main, run_training
from nlnet.utils import PreflightError, close_distributed, init_cpu_distributed
from nlnet.utils.config_values import check_config_values, check_work_dir, load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model with an nlnet config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; without a value, from the latest checkpoint of the '
        'work dir (a fresh start if there is none)')
    parser.add_argument('--resume-anyway', action='store_true',
                        help='resume even from a checkpoint whose saved config differs from this '
                        'one in the model, data or schedule (the differences are logged)')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision: float16 with loss scaling on a GPU, '
                        'bfloat16 on the CPU')
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
        try:
            amp_optim_wrapper(cfg.optim_wrapper)
        except ValueError as error:
            raise PreflightError(str(error)) from error

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
        # nlnet scales the lr itself (nlnet.utils.lr_scaling); mmengine must not scale it again.
        cfg.auto_scale_lr.enable = False

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


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(load_config(args.config), args)
    check_config_values(cfg)
    check_work_dir(cfg.work_dir, '--work-dir' if args.work_dir is not None else 'work_dir')
    init_cpu_distributed(cfg, args.launcher)
    try:
        run_training(cfg, partial_load=args.partial_load, auto_scale_lr=args.auto_scale_lr,
                     resume_anyway=args.resume_anyway)
    finally:
        close_distributed()


if __name__ == '__main__':
    run_tool_main(main)
