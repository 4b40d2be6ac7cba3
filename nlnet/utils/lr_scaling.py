"""The learning rate for the total batch a run trains with (``--auto-scale-lr``)."""
import logging

from .preflight import PreflightError

__all__ = ['scaled_lr', 'scale_optimizer_lr', 'auto_scale_lr_report', 'apply_auto_scale_lr']


def scaled_lr(lr, world_size, batch_size, base_batch_size):
    """The linear scaling rule: ``lr x (world_size x batch_size) / base_batch_size``.

    Args:
        lr (float): the learning rate tuned for ``base_batch_size``.
        world_size (int): number of training processes, >= 1.
        batch_size (int): samples per process and step, >= 1.
        base_batch_size (int): total batch size ``lr`` was tuned for, >= 1.
    """
    for name, value in (('world_size', world_size), ('batch_size', batch_size),
                        ('base_batch_size', base_batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be an int >= 1, got {value!r}')
    return lr * (world_size * batch_size) / base_batch_size


def scale_optimizer_lr(optim_wrapper_cfg, world_size, batch_size, base_batch_size):
    """Set ``optim_wrapper_cfg.optimizer.lr`` to :func:`scaled_lr` of it; returns the new lr.

    Per-parameter multipliers (``paramwise_cfg``) apply on top, as before.
    """
    optimizer = optim_wrapper_cfg.get('optimizer')
    if not isinstance(optimizer, dict) or 'lr' not in optimizer:
        raise ValueError('--auto-scale-lr: optim_wrapper.optimizer.lr is not set in the config')
    optimizer['lr'] = scaled_lr(optimizer['lr'], world_size, batch_size, base_batch_size)
    return optimizer['lr']


def auto_scale_lr_report(optim_wrapper_cfg, world_size, batch_size, base_batch_size, enabled):
    """Scale the lr if ``enabled`` and say what was (or would be) done.

    Args:
        optim_wrapper_cfg (dict): the runner's ``optim_wrapper``; its
            ``optimizer.lr`` is scaled in place when ``enabled``.
        world_size (int): number of training processes.
        batch_size (int): samples per process and step.
        base_batch_size (int): ``auto_scale_lr.base_batch_size``.
        enabled (bool): whether ``--auto-scale-lr`` was given.

    Returns:
        tuple[int, str] | None: (logging level, message); None when the lr
        is not scaled and the real batch is the base batch.
    """
    real_batch = world_size * batch_size
    batches = (f'base batch {base_batch_size} (auto_scale_lr.base_batch_size), real batch '
               f'{real_batch} ({world_size} processes x {batch_size} per process)')
    lr = (optim_wrapper_cfg.get('optimizer') or {}).get('lr')
    if enabled:
        scaled = scale_optimizer_lr(optim_wrapper_cfg, world_size, batch_size, base_batch_size)
        return logging.INFO, f'--auto-scale-lr: {batches}: lr {lr:g} -> {scaled:g}'
    if real_batch == base_batch_size or lr is None:
        return None
    scaled = scaled_lr(lr, world_size, batch_size, base_batch_size)
    return logging.WARNING, (f'{batches}: training with lr {lr:g}, tuned for the base batch; '
                             f'--auto-scale-lr would train with lr {scaled:g}')


def _train_batch_size(cfg):
    """Samples per process and step, or None where the config does not say."""
    loader = cfg.train_dataloader
    return loader.get('batch_size', (loader.get('batch_sampler') or {}).get('batch_size'))


def apply_auto_scale_lr(cfg, runner, enabled):
    """Scale the lr with ``--auto-scale-lr``; without it, warn when the batch is not the base one.

    Scales the runner's optimizer config, before ``Runner.train`` builds the
    optimizer from it (the world size is known only once the runner has joined
    the process group); mmengine's own scaling stays off (``tools/train.py``
    sets ``auto_scale_lr.enable=False``), so the lr is scaled once.

    Args:
        cfg (Config): the run's config.
        runner (Runner): the built runner, optimizer not yet built.
        enabled (bool): whether ``--auto-scale-lr`` was given.
    """
    setting = cfg.get('auto_scale_lr')
    base_batch_size = setting.get('base_batch_size') if isinstance(setting, dict) else None
    batch_size = _train_batch_size(cfg)
    if enabled and batch_size is None:
        raise PreflightError('--auto-scale-lr: train_dataloader.batch_size is not set')
    # A config that lets mmengine scale the lr itself (enable=True) gets no advice.
    if batch_size is None or base_batch_size is None or \
            (not enabled and setting.get('enable', False)):
        return
    report = auto_scale_lr_report(runner.optim_wrapper, runner.world_size, batch_size,
                                  base_batch_size, enabled=enabled)
    # Every rank scales; one says so (nlnet forwards the other ranks' warnings to the log).
    if report is not None and runner.rank == 0:
        level, message = report
        runner.logger.log(level, message)
