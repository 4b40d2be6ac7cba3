"""Test a checkpoint with any nlnet config and optionally dump per-sample results.

    python tools/test.py CONFIG CHECKPOINT [--dump result.pkl] [--work-dir DIR]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

``--dump`` writes a pickle of plain Python and numpy objects, loadable without
nlnet, torch or OpenMMLab installed (format: :mod:`nlnet.evaluation.plain_dump`).
"""
import nlnet.openmmlab  # noqa: F401,I001  (first: registers nlnet and applies the stack fixes)

import argparse
import os
import os.path as osp

from mmengine.config import DictAction

from nlnet.engine import run_testing, run_tool_main
from nlnet.utils import PreflightError, close_distributed, init_cpu_distributed
from nlnet.utils.config_values import load_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a checkpoint with an nlnet config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the log and metrics '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--dump', help='write per-sample predictions and labels to this .pkl file')
    parser.add_argument('--show-dir', help='save visualisations of the predictions here (tasks '
                        'whose config has a visualization hook: segmentation, detection, ...)')
    parser.add_argument('--show', action='store_true', help='display the visualisations')
    parser.add_argument('--interval', type=int, default=1, help='visualise every n-th sample')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds each window is shown')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs such as test_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Fold the command line into the config (command line wins)."""
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False

    if args.show or args.show_dir is not None:
        enable_visualization(cfg, args)

    if args.dump is not None:
        if not args.dump.endswith(('.pkl', '.pickle')):
            raise PreflightError(f'--dump: {args.dump!r} must end with .pkl or .pickle')
        evaluators = cfg.test_evaluator
        evaluators = list(evaluators) if isinstance(evaluators, (list, tuple)) else [evaluators]
        cfg.test_evaluator = evaluators + [dict(type='PlainDumpResults')]
    return cfg


def enable_visualization(cfg, args):
    """Switch on the config's visualization hook, in the dialect of its toolbox."""
    hook = (cfg.get('default_hooks') or {}).get('visualization')
    if hook is None:
        raise PreflightError(
            '--show/--show-dir: the config has no default_hooks.visualization entry; video '
            'recognition configs have none, since MMAction2 cannot draw multi-view test clips')
    hook_type = str(hook.get('type', ''))
    if hook_type.endswith('SegVisualizationHook'):
        hook.update(draw=True, show=args.show, wait_time=args.wait_time, interval=args.interval)
        if args.show_dir is not None:
            cfg.visualizer.save_dir = args.show_dir
    elif hook_type.endswith('DetVisualizationHook'):
        hook.update(draw=True, show=args.show, wait_time=args.wait_time, interval=args.interval)
        if args.show_dir is not None:
            hook.test_out_dir = args.show_dir
    else:
        hook.update(enable=True, show=args.show, wait_time=args.wait_time, interval=args.interval)
        if args.show_dir is not None:
            hook.out_dir = args.show_dir


def main(argv=None):
    args = parse_args(argv)
    cfg = merge_args(load_config(args.config), args)
    init_cpu_distributed(cfg, args.launcher)
    try:
        run_testing(cfg, args.checkpoint, args.config, dump=args.dump)
    finally:
        close_distributed()


if __name__ == '__main__':
    run_tool_main(main)
