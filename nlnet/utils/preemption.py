"""Preemption: a signalled training run stops after the current iteration with a checkpoint.

Schedulers announce the end of a job with a signal and kill it some time later:
Slurm sends SIGTERM to the job's tasks and SIGKILL ``KillWait`` seconds (30 by
default) later, and ``sbatch --signal=USR1@120`` sends SIGUSR1 two minutes
before the time limit; torchrun passes a SIGTERM it receives on to its workers
and SIGKILLs them 30 s later; ``tools/dist_train.sh`` passes SIGTERM and
SIGUSR1 on to torchrun as SIGTERM. From ``before_train`` to ``after_train``,
:class:`~nlnet.hooks.preemption_hook.PreemptionHook` (registered by
:func:`nlnet.engine.run_training`) makes every training process handle
SIGTERM and SIGUSR1 this way:

1. The signal is logged and nothing is interrupted: the iteration in progress
   runs to its end.
2. After every iteration the ranks agree whether any of them was signalled
   (an all-reduce of one flag), so all stop after the same iteration, even
   when the signal reached them at different iterations or reached only one.
3. Rank 0 writes ``iter_N.pth`` (N: iterations trained) into the checkpoint
   directory, atomically (:mod:`nlnet.utils.atomic_save`), and points
   ``last_checkpoint`` at it; the other ranks wait for it.
4. Under Slurm (``SLURM_JOB_ID`` set) when the job was submitted with
   ``--requeue`` (``scontrol show job`` says ``Requeue=1``), rank 0 asks
   ``scontrol requeue $SLURM_JOB_ID``.
5. Every rank leaves with :data:`PREEMPTED_EXIT_CODE` (143, the status of a
   process ended by SIGTERM, which schedulers treat as preempted, for either
   signal); tools/train.py says so in one line. ``tools/dist_train.sh`` exits
   with 143 too when it was stopped by SIGTERM or SIGUSR1.

The next start with ``--resume`` (or ``--resume iter_N.pth``) continues from
that iteration and ends with the weights of an uninterrupted run. A second
signal while the checkpoint is written is logged and ignored; a SIGKILL at any
moment leaves the earlier checkpoints complete. Dataloader worker processes
ignore the signals unless their trainer sends SIGTERM
(:func:`shield_dataloader_workers`): torchrun and Slurm signal every process of
a worker's group, and a dataloader worker ended by the signal would fail the
iteration in progress. A signal during validation takes effect after the next
training iteration.
"""
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from functools import partial

import torch
from mmengine.dist import all_reduce
from mmengine.logging import print_log
from torch.utils.data import DataLoader

__all__ = [
    'PREEMPTED_EXIT_CODE', 'PREEMPTION_SIGNALS', 'PreemptionSignals', 'TrainingPreempted',
    'ranks_agree_to_stop', 'requeue_slurm_job', 'leave_preempted', 'shield_dataloader_workers',
    'end_dataloader_workers'
]

# 128 + SIGTERM: what a shell reports for a process ended by SIGTERM.
PREEMPTED_EXIT_CODE = 128 + signal.SIGTERM
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class TrainingPreempted(Exception):
    """Training stopped on a signal after saving ``checkpoint``.

    Args:
        signal_name (str): the first signal received (on any rank: the name is
            this rank's own, or ``'a signal to another rank'``).
        checkpoint (str): the checkpoint to resume from.
        iteration (int): iterations trained.
    """

    def __init__(self, signal_name, checkpoint, iteration):
        self.signal_name = signal_name
        self.checkpoint = checkpoint
        self.iteration = iteration
        super().__init__(f'stopped on {signal_name} after iteration {iteration}; saved '
                         f'{checkpoint}: continue with --resume (exit status '
                         f'{PREEMPTED_EXIT_CODE})')


class PreemptionSignals:
    """SIGTERM / SIGUSR1 handlers that record the signal instead of ending the process.

    Args:
        signals (Sequence[int]): the signals to handle.
    """

    def __init__(self, signals=PREEMPTION_SIGNALS):
        self.signals = tuple(signals)
        self.received = []
        self._previous = {}
        self._owner = None

    @property
    def requested(self):
        """Whether a stop was asked by a signal to this process."""
        return bool(self.received)

    def install(self):
        """Handle the signals in this process (call from the main thread)."""
        self._owner = os.getpid()
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self):
        """Put back the handlers that were there before :meth:`install`."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def _handle(self, signum, frame):
        if os.getpid() != self._owner:
            # A forked child before its own handlers are set: the trainer ends it.
            return
        name = signal.Signals(signum).name
        self.received.append(name)
        if len(self.received) == 1:
            print_log(f'received {name}: stopping after the current iteration with a '
                      'checkpoint', logger='current', level=logging.WARNING)
        else:
            print_log(f'received {name} again (signal {len(self.received)}): ignored, already '
                      'stopping with a checkpoint', logger='current', level=logging.WARNING)


def ignore_preemption_signals(worker_id, worker_init_fn=None):
    """A dataloader's ``worker_init_fn``: the worker ignores :data:`PREEMPTION_SIGNALS` but
    a SIGTERM from its trainer, which ends it; then the loader's own ``worker_init_fn`` runs.

    The signals are blocked and taken by a thread that reads who sent each
    (Python's handlers cannot): torch and multiprocessing end workers with
    SIGTERM, and a worker that ignored theirs would keep its trainer waiting.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, PREEMPTION_SIGNALS)
    threading.Thread(target=_end_on_the_trainers_sigterm, args=(os.getppid(), ),
                     name='preemption-signals', daemon=True).start()
    if worker_init_fn is not None:
        worker_init_fn(worker_id)


def _end_on_the_trainers_sigterm(trainer):
    while True:
        info = signal.sigwaitinfo(PREEMPTION_SIGNALS)
        if info.si_signo == signal.SIGTERM and info.si_pid == trainer:
            os._exit(0)


def shield_dataloader_workers(dataloader):
    """Make the worker processes of ``dataloader`` ignore the preemption signals.

    torch's workers otherwise die on SIGTERM (its handler re-raises it unless
    the trainer sent it), and the trainer then fails in the middle of the
    iteration. A SIGTERM from the trainer still ends a worker
    (:func:`ignore_preemption_signals`). Takes effect for the workers started
    afterwards.

    Args:
        dataloader (DataLoader | Any): anything else is left alone.
    """
    if not isinstance(dataloader, DataLoader) or dataloader.num_workers == 0:
        return
    init = dataloader.worker_init_fn
    if isinstance(init, partial) and init.func is ignore_preemption_signals:
        return
    dataloader.worker_init_fn = partial(ignore_preemption_signals, worker_init_fn=init)


def end_dataloader_workers(dataloader):
    """End the persistent worker processes of ``dataloader`` now.

    Otherwise they end when the loader's iterator is garbage-collected, where
    torch waits for each worker's queue to time out before it sends the SIGTERM
    that ends a shielded worker (:func:`ignore_preemption_signals`).

    Args:
        dataloader (DataLoader | Any): anything without live workers is left alone.
    """
    iterator = getattr(dataloader, '_iterator', None)
    if iterator is not None and hasattr(iterator, '_shutdown_workers'):
        iterator._shutdown_workers()
        dataloader._iterator = None


def ranks_agree_to_stop(requested):
    """Whether any rank asks to stop (every rank must call this at the same point).

    Args:
        requested (bool): this rank's wish.
    """
    flag = torch.tensor([int(requested)])
    all_reduce(flag, op='max')
    return bool(flag.item())


def _scontrol(*args):
    return subprocess.run(['scontrol', *args], capture_output=True, text=True, timeout=60)


def requeue_slurm_job():
    """Requeue this Slurm job if it was submitted with ``--requeue``.

    Returns:
        bool: whether ``scontrol requeue`` succeeded. Outside Slurm, without
        ``scontrol`` or without ``Requeue=1`` nothing is done; every outcome
        is logged.
    """
    job = os.environ.get('SLURM_JOB_ID')
    if job is None:
        return False
    if shutil.which('scontrol') is None:
        print_log(f'Slurm job {job}: no scontrol on PATH, not requeued', logger='current',
                  level=logging.WARNING)
        return False
    shown = _scontrol('show', 'job', '--oneliner', job)
    if shown.returncode != 0 or not re.search(r'\bRequeue=1\b', shown.stdout):
        print_log(f'Slurm job {job} was not submitted with --requeue: not requeued; submit it '
                  'again with --resume', logger='current')
        return False
    requeued = _scontrol('requeue', job)
    if requeued.returncode != 0:
        print_log(f'scontrol requeue {job} failed: {requeued.stderr.strip()}', logger='current',
                  level=logging.WARNING)
        return False
    print_log(f'Slurm job {job} requeued (scontrol requeue {job})', logger='current')
    return True


def leave_preempted(stop):
    """End the process after :class:`TrainingPreempted` with :data:`PREEMPTED_EXIT_CODE`.

    The one-line message goes to stderr. The interpreter's teardown is skipped
    as after a finished multi-process run
    (:func:`nlnet.utils.distributed.exit_after_distributed_run`).

    Args:
        stop (TrainingPreempted): what stopped the run.
    """
    print(f'{os.path.basename(sys.argv[0])}: {stop}', file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(PREEMPTED_EXIT_CODE)
