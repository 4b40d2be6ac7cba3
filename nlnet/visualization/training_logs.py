"""Curves and timings from mmengine's ``vis_data/scalars.json`` (the paper's Figure 4).

A ``scalars.json`` holds one JSON object per line: training records carry
``iter`` (and ``epoch`` in epoch-based runs) with the logged scalars, averaged
over the log processor's window (``loss``, ``top1_acc``, ``time``, ...);
validation records carry the metrics (``acc/top1``, ``mIoU``, ...) and ``step``,
the epoch (epoch-based runs) or the iteration after which they ran. Both are
plotted against the training iteration, as in the paper.
"""
import json
import os.path as osp
from collections import defaultdict
from dataclasses import dataclass, field

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STYLES = ('plain', 'paper-fig4')


@dataclass
class ScalarLog:
    """One run's records.

    Attributes:
        path (str): the ``scalars.json``.
        train (list[dict]): training records, in order.
        val (list[dict]): validation records, each with ``iter`` added: the
            training iteration it followed.
    """
    path: str
    train: list = field(default_factory=list)
    val: list = field(default_factory=list)

    def series(self, key):
        """(iterations, values) of ``key`` from the training records if they log it,
        else from the validation records.

        Raises:
            KeyError: no record logs ``key``; the message lists the keys there are.
        """
        for records in (self.train, self.val):
            points = [(r['iter'], r[key]) for r in records if key in r]
            if points:
                return tuple(np.array(axis, dtype=float) for axis in zip(*points))
        raise KeyError(f'{self.path}: no record logs {key!r}; logged keys: '
                       f'{", ".join(sorted(self.keys()))}')

    def keys(self):
        return {key for record in self.train + self.val for key in record} - {
            'iter', 'epoch', 'step'}

    def epoch_means(self, key):
        """(last iteration of each epoch, mean of ``key`` over the epoch's training records)."""
        by_epoch = defaultdict(list)
        for record in self.train:
            if key in record:
                by_epoch[record.get('epoch', 0)].append((record['iter'], record[key]))
        if not by_epoch:
            raise KeyError(f'{self.path}: no training record logs {key!r}; logged keys: '
                           f'{", ".join(sorted(self.keys()))}')
        epochs = sorted(by_epoch)
        return (np.array([max(i for i, _ in by_epoch[e]) for e in epochs], dtype=float),
                np.array([np.mean([v for _, v in by_epoch[e]]) for e in epochs]))


def load_scalars(path):
    """Read an mmengine ``scalars.json`` into a :class:`ScalarLog`.

    Raises:
        ValueError: the file is missing, a line is not JSON, or it has no training
            record (the message names the file and line).
    """
    if not osp.isfile(path):
        raise ValueError(f'log {path!r} does not exist (expected a work dir\'s '
                         '<timestamp>/vis_data/scalars.json)')
    log = ScalarLog(path)
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f'{path}, line {number}: not JSON ({error})') from None
            (log.train if 'iter' in record else log.val).append(record)
    if not log.train:
        raise ValueError(f'{path}: no training record (a line with "iter"); is it the log of '
                         'a test run?')
    end_of_epoch = {}
    for record in log.train:
        if 'epoch' in record:
            end_of_epoch[record['epoch']] = max(end_of_epoch.get(record['epoch'], 0),
                                                record['iter'])
    for record in log.val:
        # Epoch-based runs validate after epoch `step`, iteration-based ones after `step`.
        record['iter'] = end_of_epoch.get(record.get('step'), record.get('step', 0)) \
            if end_of_epoch else record.get('step', 0)
    return log


def _legend(logs, legend):
    if legend is None:
        return [osp.basename(osp.dirname(osp.dirname(osp.abspath(log.path)))) for log in logs]
    if len(legend) != len(logs):
        raise ValueError(f'--legend: {len(legend)} names for {len(logs)} logs')
    return list(legend)


def plot_curve(logs, keys, out_file, legend=None, title=None):
    """One line per log and key against the training iteration, written to ``out_file``."""
    names = _legend(logs, legend)
    figure, ax = plt.subplots(figsize=(6, 4))
    for log, name in zip(logs, names):
        for key in keys:
            iters, values = log.series(key)
            ax.plot(iters, values, label=f'{name} {key}' if len(keys) > 1 else name)
    ax.set_xlabel('iterations')
    ax.set_ylabel(keys[0] if len(keys) == 1 else 'value')
    _finish(figure, ax, out_file, title)


def plot_paper_fig4(logs, out_file, legend=None, title=None, train_key='top1_acc',
                    val_key='acc/top1'):
    """Figure 4 of the paper: top-1 training error (dashed; the mean over each epoch
    of the logged training accuracy) and validation error (solid) of each run, in %.

    Returns:
        dict: {legend name: {'train': [(iter, error %)], 'val': [(iter, error %)]}}.
    """
    names = _legend(logs, legend)
    figure, ax = plt.subplots(figsize=(6, 4))
    curves = {}
    for index, (log, name) in enumerate(zip(logs, names)):
        colour = f'C{index}'
        train_iters, train_acc = log.epoch_means(train_key)
        val_iters, val_acc = log.series(val_key)
        train_error, val_error = 100 * (1 - train_acc), 100 * (1 - val_acc)
        ax.plot(train_iters, train_error, '--', color=colour, label=f'{name} train')
        ax.plot(val_iters, val_error, '-', marker='o', color=colour, label=f'{name} val')
        curves[name] = dict(train=list(zip(train_iters.tolist(), train_error.tolist())),
                            val=list(zip(val_iters.tolist(), val_error.tolist())))
    ax.set_xlabel('iterations')
    ax.set_ylabel('error (%)')
    ax.set_ylim(bottom=0)
    _finish(figure, ax, out_file, title)
    return curves


def _finish(figure, ax, out_file, title):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    figure.tight_layout()
    figure.savefig(out_file, dpi=100)
    plt.close(figure)


def train_time(log, include_outliers=False):
    """Seconds per iteration of a run, per epoch (MMDetection's ``cal_train_time``).

    Args:
        include_outliers (bool): keep each epoch's first logged record, which
            includes the data loader's start-up (dropped by default).

    Returns:
        dict: ``slowest_epoch``, ``fastest_epoch`` (1-based, as logged), their
        times, ``std_over_epochs`` and ``average`` of the per-epoch means.
    """
    by_epoch = defaultdict(list)
    for record in log.train:
        if 'time' in record:
            by_epoch[record.get('epoch', 1)].append(record['time'])
    if not include_outliers:
        by_epoch = {e: times[1:] for e, times in by_epoch.items() if len(times) > 1}
    if not by_epoch:
        raise ValueError(f'{log.path}: no training record logs "time"')
    epochs = sorted(by_epoch)
    means = np.array([np.mean(by_epoch[e]) for e in epochs])
    return dict(slowest_epoch=epochs[int(means.argmax())], slowest_time=float(means.max()),
                fastest_epoch=epochs[int(means.argmin())], fastest_time=float(means.min()),
                std_over_epochs=float(means.std()), average=float(means.mean()))
