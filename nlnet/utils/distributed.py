"""Multi-process runs on CPU-only machines (torchrun or Slurm), and a clean end to them."""
import logging
import os
import subprocess
import sys

import torch
from mmengine.dist import is_distributed

from .preflight import PreflightError

__all__ = ['init_cpu_distributed', 'slurm_process_environment', 'close_distributed',
           'exit_after_distributed_run']

# torch.distributed's default port, which mmengine's Slurm launcher falls back on too.
DEFAULT_MASTER_PORT = '29500'


def init_cpu_distributed(cfg, launcher):
    """Start a gloo process group for CPU-only multi-process runs.

    mmengine's launchers call ``torch.cuda.set_device`` and wrap the model
    with ``device_ids=[LOCAL_RANK]``, both of which fail without a GPU. Here
    the group is started with gloo (mmengine then uses it as it is) and the
    DDP wrapper is told to use no device ids. Under ``--launcher slurm`` the
    process's rank, world size and rendezvous address come from Slurm's task
    variables first (:func:`slurm_process_environment`).

    Args:
        cfg (Config): the run's config, updated in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher == 'slurm':
        os.environ.update(slurm_process_environment(os.environ))
    elif launcher != 'pytorch':
        raise PreflightError(f'--launcher {launcher} needs GPUs; on CPU-only machines use '
                             '--launcher pytorch with torchrun (tools/dist_train.sh) or '
                             '--launcher slurm with srun (tools/slurm_train.sh)')
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


def slurm_process_environment(environ):
    """torch.distributed's variables for a task started by ``srun``, as mmengine sets them.

    ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` are Slurm's ``SLURM_PROCID``,
    ``SLURM_NTASKS`` and ``SLURM_LOCALID``; ``MASTER_ADDR`` (unless set) is
    the first host of the step's node list, expanded by ``scontrol show
    hostnames``; ``MASTER_PORT`` is kept if set (tools/slurm_train.sh picks
    one per job), else 29500.

    Args:
        environ (Mapping[str, str]): the task's environment.

    Returns:
        dict[str, str]: the variables to set.
    """
    missing = [name for name in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID')
               if name not in environ]
    node_list = environ.get('SLURM_STEP_NODELIST') or environ.get('SLURM_NODELIST')
    if node_list is None:
        missing.append('SLURM_STEP_NODELIST (or SLURM_NODELIST)')
    if missing:
        raise PreflightError(f'--launcher slurm: environment variable {", ".join(missing)} is not '
                             'set; start the script with srun (tools/slurm_train.sh)')
    variables = dict(RANK=environ['SLURM_PROCID'], WORLD_SIZE=environ['SLURM_NTASKS'],
                     LOCAL_RANK=environ['SLURM_LOCALID'],
                     MASTER_PORT=environ.get('MASTER_PORT', DEFAULT_MASTER_PORT))
    variables['MASTER_ADDR'] = environ.get('MASTER_ADDR') or _first_host(node_list)
    return variables


def _first_host(node_list):
    """The first host name of a Slurm node list such as ``node[3-5,9]``."""
    command = ['scontrol', 'show', 'hostnames', node_list]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise PreflightError(f'--launcher slurm: {command[0]} is not on PATH, needed to expand the '
                             f'node list {node_list!r}; or set MASTER_ADDR') from error
    hosts = result.stdout.split()
    if result.returncode != 0 or not hosts:
        raise PreflightError(f'--launcher slurm: {" ".join(command)} failed '
                             f'(exit {result.returncode}): {result.stderr.strip()}')
    return hosts[0]


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
