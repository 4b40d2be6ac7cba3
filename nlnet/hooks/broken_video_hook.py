"""Reports the broken videos of a run: per file, per epoch, and in one list file.

:class:`nlnet.datasets.RobustVideoDataset` records broken videos in the
samples that replace them (``replaced_videos`` in training, ``broken_video``
in testing with ``strict=False``) and :class:`nlnet.evaluation.ReadableAccMetric`
gathers the latter across ranks. This hook turns both into log lines and
``<work_dir>/broken_videos.txt``.
"""
import os.path as osp

from mmengine.dist import all_gather_object, is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

__all__ = ['BrokenVideoHook', 'read_broken_list']

LIST_NAME = 'broken_videos.txt'


def read_broken_list(path):
    """``{filename: reason}`` from a broken-video list (``<filename>\\t<reason>`` lines)."""
    if not osp.isfile(path):
        return {}
    with open(path) as handle:
        return dict(line.rstrip('\n').split('\t', 1) for line in handle if line.strip())


@HOOKS.register_module()
class BrokenVideoHook(Hook):
    """Logs every broken video and keeps ``<work_dir>/broken_videos.txt``.

    Training: each rank logs each broken video once per epoch (with its
    reason) when a sample replacing it arrives; the epoch ends with one line
    on rank 0: how many videos were replaced, on which rank, and where the
    list is. Validation and testing: rank 0 logs each video that
    :class:`ReadableAccMetric` left out, and how many of how many.

    The list accumulates the broken videos of the whole run, one
    ``<filename>\\t<reason>`` line each; a resumed run adds to it. Enable with
    ``custom_hooks = [dict(type='BrokenVideoHook')]`` (with ``RankLogHook``
    for the lines of ranks > 0).
    """

    priority = 'LOW'

    def __init__(self):
        self._epoch_replaced = {}
        self._listed = {}

    def _list_path(self, runner):
        return osp.join(runner.work_dir, LIST_NAME)

    def _write_list(self, runner, broken):
        self._listed.update(broken)
        with open(self._list_path(runner), 'w') as handle:
            handle.writelines(f'{name}\t{reason}\n'
                              for name, reason in sorted(self._listed.items()))

    def before_run(self, runner):
        self._listed = read_broken_list(self._list_path(runner))

    def before_train_epoch(self, runner):
        self._epoch_replaced = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        for sample in (data_batch or {}).get('data_samples', []):
            for entry in sample.metainfo.get('replaced_videos', ()):
                if entry['filename'] in self._epoch_replaced:
                    continue
                self._epoch_replaced[entry['filename']] = entry['reason']
                runner.logger.warning(f'epoch {runner.epoch + 1}: broken video '
                                      f'{entry["filename"]} ({entry["reason"]}); replaced by '
                                      'another sample')

    def after_train_epoch(self, runner):
        per_rank = all_gather_object(self._epoch_replaced)
        if not is_main_process():
            return
        replaced = {name: reason for rank_replaced in per_rank
                    for name, reason in rank_replaced.items()}
        epoch = runner.epoch + 1
        if not replaced:
            runner.logger.info(f'epoch {epoch}: no broken videos replaced')
            return
        self._write_list(runner, replaced)
        counts = ', '.join(f'rank {rank}: {len(r)}' for rank, r in enumerate(per_rank))
        runner.logger.warning(f'epoch {epoch}: {len(replaced)} broken videos replaced by other '
                              f'samples ({counts}); list in {self._list_path(runner)}')

    def before_val_epoch(self, runner):
        _check_evaluator(runner.val_loop)

    def before_test_epoch(self, runner):
        _check_evaluator(runner.test_loop)

    def after_val_epoch(self, runner, metrics=None):
        # The epoch in the text: mmengine's logger drops a warning that repeats word for word.
        self._report_left_out(runner, runner.val_loop, f'validation after epoch {runner.epoch}')

    def after_test_epoch(self, runner, metrics=None):
        self._report_left_out(runner, runner.test_loop, 'testing')

    def _report_left_out(self, runner, loop, phase):
        if not is_main_process():
            return
        skipped = getattr(loop.dataloader.dataset, 'skipped', [])
        broken = skipped + [entry for metric in loop.evaluator.metrics
                            for entry in getattr(metric, 'broken_videos', ())]
        if not broken:
            return
        for entry in broken:
            runner.logger.warning(f'{phase}: broken video {entry["filename"]} '
                                  f'({entry["reason"]}) left out of the metrics')
        self._write_list(runner, {entry['filename']: entry['reason'] for entry in broken})
        runner.logger.warning(
            f'{phase}: {len(broken)} of {len(loop.dataloader.dataset) + len(skipped)} videos '
            f'are broken and left out of the metrics; list in {self._list_path(runner)}')


def _check_evaluator(loop):
    """Refuse a lenient robust dataset whose evaluator would score its stand-in samples."""
    dataset = loop.dataloader.dataset
    if getattr(dataset, 'strict', True):
        return
    if not any(hasattr(metric, 'broken_videos') for metric in loop.evaluator.metrics):
        raise ValueError(
            f'{type(dataset).__name__}(strict=False) replaces broken videos by readable ones '
            'marked broken_video; the evaluator must leave them out: use '
            "dict(type='ReadableAccMetric') instead of "
            f'{[type(m).__name__ for m in loop.evaluator.metrics]}')
