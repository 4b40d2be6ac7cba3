"""The checkpoint that ``--resume`` without a value, and a restarted torchrun worker, continue from.

mmengine resumes from the file that ``work_dir/last_checkpoint`` names, whether
or not it reads. Here the candidates are the work dir's ``epoch_N.pth`` and
``iter_N.pth`` and the file ``last_checkpoint`` names, newest first (by
modification time); the first one that reads completely is taken, and every
newer one passed over is logged with the reason. ``best_*`` checkpoints hold
no optimizer state and are never resumed from.

A torchrun worker started again after a failure (``--max-restarts``, torchrun
sets ``TORCHELASTIC_RESTART_COUNT`` > 0) resumes the same way from the work
dir, whatever the command line asked for the first start (a fresh start,
``load_from`` or an older ``--resume`` checkpoint): its work dir holds where
the failed attempt got to.
"""
import glob
import logging
import os
import os.path as osp
import re
from dataclasses import dataclass, field

from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = ['ResumeSelection', 'newest_intact_checkpoint', 'restart_count',
           'select_resume_checkpoint']

CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_\d+\.pth$')


def restart_count():
    """How many times torchrun has restarted this worker group (0 outside torchrun)."""
    return int(os.environ.get('TORCHELASTIC_RESTART_COUNT', '0'))


def _candidates(work_dir):
    paths = {osp.abspath(path) for path in glob.glob(osp.join(work_dir, '*.pth'))
             if CHECKPOINT_NAME.match(osp.basename(path))}
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as handle:
            named = handle.read().strip()
        if named and '://' not in named:
            paths.add(osp.abspath(named))
    existing = [path for path in paths if osp.exists(path)]
    return sorted(existing, key=lambda path: (os.stat(path).st_mtime_ns, path), reverse=True)


def _reading_error(path):
    """Why ``path`` is not a complete training checkpoint, or None if it is."""
    try:
        checkpoint = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    except Exception as error:  # whatever the file fails with is the reason it is skipped
        return f'{type(error).__name__}: {error}'
    if not isinstance(checkpoint, dict) or 'meta' not in checkpoint or \
            'state_dict' not in checkpoint:
        return 'not a training checkpoint (no meta and state_dict)'
    return None


def newest_intact_checkpoint(work_dir):
    """The newest checkpoint of ``work_dir`` that reads completely.

    Args:
        work_dir (str): the run's work dir.

    Returns:
        tuple[str | None, list[tuple[str, str]]]: its path (None if none
        reads), and ``(path, reason)`` for each newer checkpoint skipped.
    """
    skipped = []
    for path in _candidates(work_dir):
        reason = _reading_error(path)
        if reason is None:
            return path, skipped
        skipped.append((path, reason))
    return None, skipped


@dataclass
class ResumeSelection:
    """What :func:`select_resume_checkpoint` chose, and the lines it logs.

    Attributes:
        checkpoint: the checkpoint resumed from, or None.
        messages: ``(logging level, text)`` in order.
    """

    checkpoint: str = None
    messages: list = field(default_factory=list)

    def log(self):
        """Log the messages (once the runner's logger exists, so they reach the log file)."""
        for level, text in self.messages:
            print_log(text, logger='current', level=level)


def select_resume_checkpoint(cfg):
    """Point ``cfg.load_from`` at the newest intact checkpoint where the run resumes from its
    work dir: ``cfg.resume`` without ``load_from`` (``--resume`` without a value), or any
    torchrun restart.

    Args:
        cfg (Config): the run's config, changed in place; with no intact
            checkpoint a resume without a value becomes a fresh start.

    Returns:
        ResumeSelection: the choice; its messages are to be logged with
        :meth:`ResumeSelection.log` once the runner is built.
    """
    restarts = restart_count()
    if not restarts and not (cfg.get('resume') and not cfg.get('load_from')):
        return ResumeSelection()
    checkpoint, skipped = newest_intact_checkpoint(cfg.work_dir)
    selection = ResumeSelection(checkpoint)
    for path, reason in skipped:
        selection.messages.append((logging.WARNING, f'--resume: skipped {path}, which does not '
                                   f'read completely ({reason})'))
    attempt = (f'torchrun restart {restarts} of at most '
               f'{os.environ.get("TORCHELASTIC_MAX_RESTARTS", "?")} (a worker of the previous '
               'attempt failed; torchrun logged which): ') if restarts else '--resume: '
    if checkpoint is not None:
        cfg.resume = True
        cfg.load_from = checkpoint
        selection.messages.append(
            (logging.INFO, f'{attempt}resuming from {checkpoint}, the newest intact checkpoint '
             f'of {cfg.work_dir}'))
    elif restarts:
        selection.messages.append(
            (logging.WARNING, f'{attempt}no intact checkpoint in {cfg.work_dir}; starting as '
             'the first attempt did'))
    else:
        cfg.resume = False
        selection.messages.append(
            (logging.INFO, f'--resume: no intact checkpoint in {cfg.work_dir}; starting from '
             'the beginning'))
    return selection
