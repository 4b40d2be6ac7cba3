"""The learning rate for the total batch a run trains with (``--auto-scale-lr``)."""
import logging

__all__ = ['scaled_lr', 'scale_optimizer_lr', 'auto_scale_lr_report']


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
