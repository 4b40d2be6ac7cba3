"""A lost worker costs only the work since the last checkpoint, automatically (issue 25, item 2).

A 2-process ``MAX_RESTARTS=1 tools/dist_train.sh`` job has one worker killed
with SIGKILL in epoch 2: torchrun names the dead worker and starts the group
again, the restarted workers resume from the newest intact checkpoint of the
work dir, and the job ends by itself with the uninterrupted run's weights and
optimizer state.

Training reads in the ranks themselves (no dataloader workers): the restart does not
depend on them, and on Python 3.11 before the fix of CPython gh-112275 a worker forked
while a gloo thread holds the interpreter's head lock can hang in its start, which
this test met once (a clean-clone CI run; the child stuck in PyOS_AfterFork_Child).
"""
import os
import re
import signal

from helpers.cluster_runs import (CHECKPOINT_INTERVAL, FINAL_CHECKPOINT, PER_EPOCH, Job,
                                  assert_same_training_state, hold_hook, iteration_line,
                                  trained_iterations, write_cluster_config)

# Rank 1 dies after the 3rd iteration of epoch 2; the newest checkpoint then is the 2nd's.
KILLED_AFTER = PER_EPOCH + 3
RESUMED_AFTER = KILLED_AFTER // CHECKPOINT_INTERVAL * CHECKPOINT_INTERVAL


def test_a_worker_killed_in_epoch_2_is_restarted_and_the_job_ends_like_the_uninterrupted_run(
        cluster_reference):
    reference = cluster_reference
    release = reference.root / 'restart.release'
    config = write_cluster_config(reference.root / 'nl_c2d_restart.py', reference.data,
                                  hooks=[hold_hook(KILLED_AFTER, release)], train_workers=0)
    work_dir = reference.root / 'restart'
    job = Job(config, work_dir, env=dict(MAX_RESTARTS='1'))
    job.wait_for_log(iteration_line(2, KILLED_AFTER - PER_EPOCH))
    killed = job.held_pids(release)[1]
    os.kill(killed, signal.SIGKILL)
    release.touch()
    assert job.wait() == 0, job.stderr()[-4000:]

    first, restarted = job.logs()
    # The kill came before the end: the first attempt never trained the last iteration.
    assert trained_iterations(first)[-1] == (2, KILLED_AFTER - PER_EPOCH)
    assert re.search(rf'failed \(exitcode: -9\) local_rank: 1 \(pid: {killed}\)', job.stderr())
    checkpoint = work_dir / f'iter_{RESUMED_AFTER}.pth'
    assert (f'torchrun restart 1 of at most 1 (a worker of the previous attempt failed; '
            f'torchrun logged which): resuming from {checkpoint}') in restarted
    assert f'continuing from {checkpoint} after epoch 1, iteration {RESUMED_AFTER}' in restarted
    trained_again = trained_iterations(restarted)
    assert trained_again == [(2, index) for index in
                             range(RESUMED_AFTER - PER_EPOCH + 1, PER_EPOCH + 1)]
    assert_same_training_state(work_dir / FINAL_CHECKPOINT, reference.final_checkpoint)
    print(f'job with a restart {job.seconds:.1f} s, iterations trained twice: '
          f'{KILLED_AFTER - RESUMED_AFTER}')
