"""Warnings of every rank and every dataloader worker in the run's one log file.

mmengine's logger writes the log file on rank 0 only and sends rank > 0's
warnings nowhere; dataloader workers inherit their rank's logger. This hook
tags every warning with its rank (and worker) and appends the warnings of the
other ranks to rank 0's file.
"""
import fcntl
import logging
import os
import os.path as osp

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging.logger import MMFormatter
from mmengine.registry import HOOKS
from torch.utils.data import get_worker_info

__all__ = ['RankLogHook', 'RankTag']


class RankTag(logging.Filter):
    """Prefixes warnings and errors with ``[rank R]`` or ``[rank R worker W]``.

    Args:
        rank (int): the process's global rank.
    """

    def __init__(self, rank):
        super().__init__()
        self.rank = rank

    def filter(self, record):
        if record.levelno >= logging.WARNING:
            worker = get_worker_info()
            where = f'rank {self.rank}' + ('' if worker is None else f' worker {worker.id}')
            record.msg = f'[{where}] {record.msg}'
        return True


def _append_only(stream):
    """Make every write of ``stream`` land at the end of its file, whoever else appends."""
    stream.flush()
    flags = fcntl.fcntl(stream.fileno(), fcntl.F_GETFL)
    fcntl.fcntl(stream.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)


@HOOKS.register_module()
class RankLogHook(Hook):
    """Routes every rank's and dataloader worker's warnings to the log file, tagged.

    Enable with ``custom_hooks = [dict(type='RankLogHook')]``. Installed before
    the run starts, so workers (forked when the first epoch begins) inherit it;
    warnings logged while the datasets are built come earlier and stay on
    their rank.

    Args:
        level (str): lowest level that ranks > 0 write to the log file.
    """

    priority = 'VERY_HIGH'

    def __init__(self, level='WARNING'):
        if level not in ('DEBUG', 'INFO', 'WARNING', 'ERROR'):
            raise ValueError(f"RankLogHook: level must be 'DEBUG', 'INFO', 'WARNING' or "
                             f"'ERROR', got {level!r}")
        self.level = level

    def before_run(self, runner):
        rank = get_rank()
        logger = runner.logger
        if any(isinstance(f, RankTag) for f in logger.filters):
            return
        logger.addFilter(RankTag(rank))
        log_file = osp.join(runner.log_dir, f'{runner.timestamp}.log')
        if rank == 0:
            for handler in logger.handlers:
                if isinstance(handler, logging.FileHandler) and handler.stream is not None:
                    _append_only(handler.stream)
            return
        handler = logging.FileHandler(log_file, mode='a')
        handler.setFormatter(MMFormatter(color=False, datefmt='%Y/%m/%d %H:%M:%S'))
        handler.setLevel(self.level)
        logger.addHandler(handler)
