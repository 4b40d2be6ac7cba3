"""Test a checkpoint with any nlnet config and optionally dump per-sample results.

    python tools/test.py CONFIG CHECKPOINT [--dump result.pkl] [--work-dir DIR]
        [--show-dir DIR] [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

``--dump`` writes a pickle of plain Python and numpy objects (loadable without
nlnet, torch or OpenMMLab installed)::

    {'config': str, 'checkpoint': str,
     'metrics': {name: float},                  # as logged
     'samples': [ {...}, ... ],                 # one dict per test sample, dataset order
     'skipped': [ {'filename', 'label', 'reason'}, ... ]}   # videos left out

Each sample dict holds the model's data sample with tensors as numpy arrays,
e.g. for video recognition ``index``, ``filename``, ``gt_label`` (int),
``pred_label`` (int) and ``pred_score`` (float32 array over classes).
"""
import nlnet  # noqa: F401,I001  (first: registers nlnet and applies the stack fixes)

import argparse
import os
import os.path as osp
import pickle
import sys

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS
from mmengine.structures import BaseDataElement

from preflight import (PreflightError, build_datasets, build_runner, check_checkpoint,
                       check_data_paths, close_distributed, config_errors_explained,
                       exit_after_distributed_run, init_cpu_distributed)


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


def to_plain(value):
    """``value`` with tensors as numpy arrays and data elements as dicts, recursively."""
    if isinstance(value, BaseDataElement):
        value = value.to_dict()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(item) for item in value)
    if value is None or isinstance(value, (bool, int, float, str, bytes, np.ndarray)):
        return value
    return repr(value)


@METRICS.register_module()
class PlainDumpResults(BaseMetric):
    """Collects every test sample exactly once (across processes) as plain objects.

    The gathered samples are kept in :attr:`samples` on the main process; the
    caller writes them (with the other metrics) after the test loop.
    """

    default_prefix = 'dump'

    def __init__(self, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.samples = []

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            plain = to_plain(sample)
            for key in ('gt_label', 'pred_label'):
                label = plain.get(key)
                if isinstance(label, np.ndarray) and label.size == 1:
                    plain[key] = int(label.reshape(-1)[0])
            score = plain.get('pred_score')
            if 'pred_label' not in plain and isinstance(score, np.ndarray) and score.ndim == 1:
                plain['pred_label'] = int(score.argmax())
            self.results.append(plain)

    def compute_metrics(self, results):
        self.samples = [dict(index=index, **sample) for index, sample in enumerate(results)]
        return {}


def merge_args(cfg, args):
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


def write_dump(path, runner, args, metrics):
    dump_metric = next(m for m in runner.test_loop.evaluator.metrics
                       if isinstance(m, PlainDumpResults))
    dataset = runner.test_loop.dataloader.dataset
    skipped = [to_plain(item) for item in getattr(dataset, 'skipped', [])]
    payload = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        metrics={key: to_plain(value) for key, value in metrics.items()},
        samples=dump_metric.samples,
        skipped=skipped)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'wb') as handle:
        pickle.dump(payload, handle)
    runner.logger.info(f'dumped {len(payload["samples"])} samples'
                       f'{f" ({len(skipped)} skipped)" if skipped else ""} to {path}')


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args)
    check_data_paths(cfg, ['test_dataloader'])
    init_cpu_distributed(cfg, args.launcher)
    try:
        evaluate(cfg, args)
    finally:
        close_distributed()


def evaluate(cfg, args):
    """Build the runner, check its dataset and the checkpoint, test, and write the dump."""
    runner = build_runner(cfg)
    build_datasets(runner, ['_test_dataloader'], cfg)
    check_checkpoint(runner.model, args.checkpoint, 'checkpoint', strict=True)
    with config_errors_explained(cfg):
        metrics = runner.test()
    if args.dump is not None and is_main_process():
        write_dump(args.dump, runner, args, metrics)


if __name__ == '__main__':
    try:
        main()
    except PreflightError as error:
        print(f'{osp.basename(sys.argv[0])}: error: {error}', file=sys.stderr)
        sys.exit(2)
    exit_after_distributed_run()
