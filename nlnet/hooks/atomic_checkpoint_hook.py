"""Crash-safe checkpoints: mmengine's ``CheckpointHook`` with atomic writes.

:class:`AtomicCheckpointHook` saves exactly what ``CheckpointHook`` saves, under
the same names, but

* each checkpoint and ``last_checkpoint`` is written to a temporary file and
  renamed into place (:mod:`nlnet.utils.atomic_save`), so a kill at any moment
  leaves the previous complete files and never a partial one;
* with ``max_keep_ckpts``, the outdated checkpoint is deleted after the new one
  is saved (mmengine deletes it first: with ``max_keep_ckpts=1`` a crash
  during the save left no checkpoint at all);
* the temporary files of saves interrupted in an earlier run are deleted, each
  logged.

:func:`atomic_checkpoint_cfg` swaps it in for every ``CheckpointHook`` of a
config; :func:`nlnet.engine.run_training` does so for every run.
"""
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..utils.atomic_save import ATOMIC_BACKEND_ARGS, atomic_write, interrupted_saves

__all__ = ['AtomicCheckpointHook', 'atomic_checkpoint_cfg']


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) writing every file atomically.

    Checkpoints in a local directory go through
    :class:`~nlnet.utils.atomic_save.AtomicLocalBackend`; with
    ``backend_args`` / ``file_client_args`` or a remote ``out_dir`` the
    configured backend writes them as in mmengine.
    """

    def before_train(self, runner):
        super().before_train(runner)
        if self.file_client_args is None and self.backend_args is None and \
                type(self.file_backend) is LocalBackend:
            self.backend_args = dict(ATOMIC_BACKEND_ARGS)
            self.file_backend = get_file_backend(self.out_dir, backend_args=self.backend_args)
        if is_main_process() and isinstance(self.file_backend, LocalBackend) and \
                osp.isdir(self.out_dir):
            for path in interrupted_saves(self.out_dir):
                os.remove(path)
                print_log(f'removed {path}, the temporary file of a save that was interrupted',
                          logger='current')

    def save_iteration(self, runner):
        """Save ``iter_N.pth`` now, N being the iterations trained (kept out of the rotation).

        Returns:
            str: the checkpoint's path.
        """
        step = runner.iter + 1
        path = self.file_backend.join_path(self.out_dir, f'iter_{step}.pth')
        if self.last_ckpt != path:
            self._write(runner, path, meta=dict(epoch=runner.epoch, iter=step), by_epoch=False)
        return path

    def _save_checkpoint_with_step(self, runner, step, meta):
        outdated = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step))
        self._write(runner, path, meta=meta, by_epoch=self.by_epoch)
        if outdated is not None and is_main_process():
            self._remove(self.file_backend.join_path(self.out_dir,
                                                     self.filename_tmpl.format(outdated)))

    def _write(self, runner, path, meta, by_epoch):
        """Save the checkpoint ``path``, then point ``last_checkpoint`` at it."""
        self.last_ckpt = path
        runner.message_hub.update_info('last_ckpt', path)
        runner.save_checkpoint(
            self.out_dir,
            osp.basename(path),
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if is_main_process():
            atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), path)

    def _remove(self, path):
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            # checkpoints saved by deepspeed are directories
            self.file_backend.rmtree(path)


def atomic_checkpoint_cfg(cfg):
    """Make every ``CheckpointHook`` of ``cfg`` an :class:`AtomicCheckpointHook` (in place).

    Args:
        cfg (Config): the run's config; ``default_hooks.checkpoint`` and
            ``custom_hooks`` are changed where their ``type`` is
            ``CheckpointHook``.
    """
    hooks = [(cfg.get('default_hooks') or {}).get('checkpoint')]
    hooks += list(cfg.get('custom_hooks') or [])
    for hook in hooks:
        if isinstance(hook, dict) and hook.get('type') in ('CheckpointHook',
                                                           'mmengine.CheckpointHook'):
            hook['type'] = 'AtomicCheckpointHook'
    return cfg
