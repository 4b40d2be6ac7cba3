"""Preemption loses nothing (issue 25, item 3).

A 2-process ``tools/dist_train.sh`` job gets SIGTERM in epoch 2, as a scheduler
announces preemption: every rank finishes the iteration in progress, rank 0
saves it as ``iter_N.pth`` (a second SIGTERM during that save is ignored), the
job exits with 143, and the next start with ``--resume`` (which deletes the
temporary file an earlier interrupted save left) ends with the uninterrupted
run's weights and optimizer state. The handlers themselves are tested in this
process.
"""
import os
import signal
import subprocess
import time

import pytest
from helpers.cluster_runs import (FINAL_CHECKPOINT, PER_EPOCH, Job, assert_same_training_state,
                                  hold_hook, iteration_line, load, run_job,
                                  signal_during_save_hook, trained_iterations,
                                  write_cluster_config)

from torch.utils.data import DataLoader, Dataset

from nlnet.utils.preemption import (PREEMPTED_EXIT_CODE, PreemptionSignals, ranks_agree_to_stop,
                                    shield_dataloader_workers)

# The job is held after the 2nd iteration of epoch 2 and signalled there; the 3rd is in
# progress when it stops, and only the 4th is left for the resumed run.
HELD_AFTER = PER_EPOCH + 2
STOPPED_AFTER = HELD_AFTER + 1


def test_sigterm_in_epoch_2_saves_the_iteration_and_resume_ends_like_the_uninterrupted_run(
        cluster_reference):
    reference = cluster_reference
    release = reference.root / 'sigterm.release'
    config = write_cluster_config(
        reference.root / 'nl_c2d_sigterm.py', reference.data,
        hooks=[hold_hook(HELD_AFTER, release), signal_during_save_hook(STOPPED_AFTER)])
    work_dir = reference.root / 'sigterm'
    job = Job(config, work_dir)
    job.wait_for_log(iteration_line(2, HELD_AFTER - PER_EPOCH))
    job.held_pids(release)
    job.signal(signal.SIGTERM)
    job.wait_for_log('received SIGTERM: stopping after the current iteration')
    release.touch()
    assert job.wait() == PREEMPTED_EXIT_CODE, job.stderr()[-4000:]

    log, = job.logs()
    assert trained_iterations(log)[-1] == (2, STOPPED_AFTER - PER_EPOCH)
    checkpoint = work_dir / f'iter_{STOPPED_AFTER}.pth'
    assert not (work_dir / FINAL_CHECKPOINT).exists()
    assert (work_dir / 'last_checkpoint').read_text() == str(checkpoint)
    assert load(checkpoint)['meta']['iter'] == STOPPED_AFTER
    assert 'received SIGTERM again (signal 2): ignored, already stopping' in log
    assert f'stopped on SIGTERM after iteration {STOPPED_AFTER}; saved {checkpoint}' in \
        job.stderr()
    preempted_seconds = job.seconds
    # What a save killed in an earlier run leaves (its writer's pid is above any pid).
    interrupted = work_dir / f'.iter_{STOPPED_AFTER + 1}.pth.{2**22 + 1}.tmp'
    interrupted.write_bytes(b'PK')

    resumed = run_job(reference.config, work_dir, '--resume')
    log = resumed.logs()[-1]
    assert f'removed {interrupted}, the temporary file of a save that was interrupted' in log
    assert not interrupted.exists()
    assert f'--resume: resuming from {checkpoint}, the newest intact checkpoint' in log
    assert f'continuing from {checkpoint} after epoch 1, iteration {STOPPED_AFTER}' in log
    # Nothing trained twice: the resumed run trains only what the stopped one had not.
    assert trained_iterations(log) == [(2, index) for index in
                                       range(STOPPED_AFTER - PER_EPOCH + 1, PER_EPOCH + 1)]
    assert_same_training_state(work_dir / FINAL_CHECKPOINT, reference.final_checkpoint)
    print(f'preempted job {preempted_seconds:.1f} s, resumed job {resumed.seconds:.1f} s, '
          'iterations trained twice: 0')


@pytest.fixture
def signals():
    handlers = PreemptionSignals()
    handlers.install()
    yield handlers
    handlers.restore()


@pytest.mark.parametrize('signal_name', ['SIGTERM', 'SIGUSR1'])
def test_a_signal_is_recorded_and_the_process_goes_on(signals, signal_name):
    assert not signals.requested and not ranks_agree_to_stop(signals.requested)
    os.kill(os.getpid(), signal.Signals[signal_name])
    assert signals.requested and ranks_agree_to_stop(signals.requested)
    assert signals.received == [signal_name]


def test_a_second_signal_is_ignored_and_the_handlers_are_restored_after():
    before = [signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGUSR1)]
    signals = PreemptionSignals()
    signals.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert signals.received == ['SIGTERM', 'SIGUSR1']
    finally:
        signals.restore()
    assert [signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGUSR1)] == before


class WorkerPids(Dataset):
    """Each sample is the pid of the process that reads it."""

    def __len__(self):
        return 1000

    def __getitem__(self, index):
        return os.getpid()


def ended(pid):
    """Whether ``pid`` has exited (gone or a zombie)."""
    try:
        with open(f'/proc/{pid}/stat') as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except FileNotFoundError:
        return True


def test_a_dataloader_worker_outlives_others_signals_but_not_its_trainers_sigterm():
    loader = DataLoader(WorkerPids(), batch_size=None, num_workers=1, persistent_workers=True)
    shield_dataloader_workers(loader)
    batches = iter(loader)
    worker = int(next(batches))
    # As torchrun and Slurm signal a trainer's whole process group: from another process.
    for name in ('TERM', 'USR1'):
        subprocess.run(['kill', f'-{name}', str(worker)], check=True)
    assert int(next(batches)) == worker
    # As torch and multiprocessing end their workers: SIGTERM from the trainer.
    os.kill(worker, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while not ended(worker):
        assert time.monotonic() < deadline, 'the worker ignored its trainer\'s SIGTERM'
        time.sleep(0.01)
    del batches
