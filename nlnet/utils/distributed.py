"""Multi-process runs on CPU-only machines, and a clean end to torchrun jobs."""
import logging
import os
import sys

import torch
from mmengine.dist import is_distributed

from .preflight import PreflightError

__all__ = ['init_cpu_distributed', 'close_distributed', 'exit_after_distributed_run']


def init_cpu_distributed(cfg, launcher):
    """Start a gloo process group for CPU-only multi-process runs.

    mmengine's launchers call ``torch.cuda.set_device`` and wrap the model
    with ``device_ids=[LOCAL_RANK]``, both of which fail without a GPU. Here
    the group is started with gloo (mmengine then uses it as it is) and the
    DDP wrapper is told to use no device ids.

    Args:
        cfg (Config): the run's config, updated in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise PreflightError(f'--launcher {launcher} needs GPUs; on CPU-only machines use '
                             '--launcher pytorch with torchrun (tools/dist_train.sh)')
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if name not in os.environ:
            raise PreflightError(f'--launcher pytorch: environment variable {name} is not set; '
                                 'start the script with torchrun')
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    if not is_distributed():
        torch.distributed.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def close_distributed():
    """Destroy the default process group, if any, before the interpreter exits.

    Otherwise gloo's worker threads can still hold tensors while Python shuts
    down, and a rank that finished its work aborts with "terminate called
    without an active exception" (SIGABRT), failing the whole torchrun job
    (pytorch/pytorch#190489).
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def exit_after_distributed_run():
    """End a successful multi-process run now, skipping the interpreter's teardown.

    Even after :func:`close_distributed`, one rank in a few of a torchrun job
    still aborts in teardown ("terminate called without an active exception",
    SIGABRT: a C++ thread of gloo or of decord's readers is destroyed while
    joinable), and torchrun then reports the finished job as failed. The work
    is done and the logs are flushed here, so the process leaves with
    ``os._exit(0)``. Single-process runs exit normally.
    """
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
