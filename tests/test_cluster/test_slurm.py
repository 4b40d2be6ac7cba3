"""tools/slurm_train.sh and tools/slurm_test.sh under a real Slurm, preempted and requeued
(issue 25 item 5).

The cluster is the one-machine Slurm of ``tools/ci/start_slurm.sh`` (``.ci/run``
starts it; 1 node, 2 CPUs, no GPUs). One training job is submitted as the README
says for preemptible partitions: ``sbatch --requeue`` of ``tools/slurm_train.sh``
(2 tasks of ``tools/train.py --launcher slurm`` over gloo) with ``--auto-scale-lr
--resume``. Held at the start of epoch 2, it gets ``scancel --signal=TERM``; its
tasks save the next iteration and rank 0 requeues the job; the second start
resumes there. Then ``tools/slurm_test.sh --dump`` tests its final checkpoint.
Checked, as a user relies on it: the world size Slurm gave reaches the lr
scaling, the checkpoints are written, no iteration is trained twice, the final
weights and optimizer state equal the 1 node x 2 processes torchrun reference's
(``cluster_reference``) tensor for tensor, and the dump equals the torchrun one
(``cluster_reference_dump``).

``auto_scale_lr.base_batch_size`` is set to the real batch (2 tasks x 2 videos),
so that the scaled lr is the reference's: a task that saw another world size
would log another batch and train with another lr.

Slurm holds a requeued job for two minutes before it may start again; the test
lets it start at once (``scontrol update JobId=... StartTime=now``), as an
administrator can. Where Slurm is not installed or does not answer, the Slurm
tests skip, saying which command failed and how.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest
from helpers.cluster_launches import (TEST_VIDEOS, CommandJob, assert_same_dump, dump_args,
                                      load_dump, wait_all)
from helpers.cluster_runs import (CHECKPOINT_INTERVAL, FINAL_CHECKPOINT, JOB_TIMEOUT, PER_EPOCH,
                                  PROCESSES, TOTAL_ITERS, TRAIN_ARGS,
                                  assert_same_training_state, hold_hook, load,
                                  trained_iterations, write_cluster_config)
from helpers.hold_hook import held_pid_file
from helpers.video_tools import HELPERS, ROOT, TRAIN_BATCH, free_port, shell_tool

# Held before the first iteration of epoch 2 and signalled there: that iteration is
# trained and saved, the requeued start trains the rest of epoch 2.
HELD_AFTER = PER_EPOCH
STOPPED_AFTER = HELD_AFTER + 1

START_SLURM = 'sudo bash tools/ci/start_slurm.sh'


def slurm_partition():
    """(default partition, '') when Slurm can run 2 one-CPU tasks here, else (None, why not)."""
    if shutil.which('srun') is None:
        return None, f'no srun on PATH: Slurm is not installed here ({START_SLURM} installs it)'
    ping = subprocess.run(['scontrol', 'ping'], capture_output=True, text=True)
    if 'is UP' not in ping.stdout:
        said = (ping.stdout + ping.stderr).strip()[-500:]
        return None, (f'slurmctld not responding: `scontrol ping` exited {ping.returncode}: '
                      f'{said} ({START_SLURM} starts it)')
    sinfo = subprocess.run(['sinfo', '-h', '-o', '%P|%T|%c'], capture_output=True, text=True)
    rows = [line.split('|') for line in sinfo.stdout.split() if line.count('|') == 2]
    usable = [partition.rstrip('*') for partition, state, cpus in rows
              if partition.endswith('*') and state in ('idle', 'mixed', 'allocated')
              and int(cpus.rstrip('+')) >= PROCESSES]
    if not usable:
        said = f'{sinfo.stdout.strip()!r} {sinfo.stderr.strip()}'
        return None, (f'no node of the default partition is up with {PROCESSES} CPUs: '
                      f'`sinfo -h -o %P|%T|%c` says {said}')
    return usable[0], ''


# Session scope, and first in the tests' arguments: pytest builds higher-scoped fixtures first,
# and a missing Slurm is to skip before the session's reference run is trained.
@pytest.fixture(scope='session')
def partition():
    found, reason = slurm_partition()
    if found is None:
        pytest.skip(reason)
    return found


def slurm_env():
    """Environment of a tools/slurm_*.sh job: 2 tasks of 1 CPU, its own rendezvous port."""
    return dict(GPUS=str(PROCESSES), CPUS_PER_TASK='1', MASTER_PORT=str(free_port()))


@pytest.fixture(scope='module')
def job_names():
    """Job names unique to this test process; jobs left running at the end are cancelled."""
    names = []

    def name(what):
        names.append(f'nlnet-{what}-{os.getpid()}')
        return names[-1]

    yield name
    for job_name in names:
        subprocess.run(['scancel', f'--name={job_name}'], capture_output=True)


class BatchJob:
    """A job submitted with ``sbatch``, watched through ``scontrol`` and its work dir's logs.

    Args:
        options (Sequence[str]): sbatch options.
        command (Sequence): the command line the job runs (``--wrap``).
        work_dir (Path): the run's work dir; the job's output goes to
            ``<work_dir>.out`` beside it, appended to by every start.
        env (dict): environment on top of this process's (sbatch passes it on).
    """

    def __init__(self, options, command, work_dir, env):
        self.work_dir = work_dir
        self.output = work_dir.parent / f'{work_dir.name}.out'
        full_env = dict(os.environ, **env)
        self.started = time.monotonic()
        submitted = subprocess.run(
            ['sbatch', '--parsable', '--open-mode=append', f'--output={self.output}', *options,
             '--wrap', shlex.join([str(arg) for arg in command])],
            cwd=work_dir.parent, env=full_env, capture_output=True, text=True)
        assert submitted.returncode == 0, submitted.stderr
        self.id = submitted.stdout.strip().split(';')[0]

    def fields(self):
        """``scontrol show job``'s fields (JobState, Restarts, ExitCode, ...)."""
        shown = subprocess.run(['scontrol', 'show', 'job', '--oneliner', self.id],
                               capture_output=True, text=True)
        return dict(field.split('=', 1) for field in shown.stdout.split() if '=' in field)

    def logs(self):
        return [path.read_text() for path in sorted(self.work_dir.glob('*/*.log'))]

    def wait_until(self, condition, what):
        """Poll ``condition()`` until true; fail if the job ends first or after JOB_TIMEOUT."""
        deadline = time.monotonic() + JOB_TIMEOUT
        while not condition():
            state = self.fields().get('JobState')
            # The job may have reached ``condition`` between the two reads: ask once more.
            if (state not in ('PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'REQUEUED')
                    and not condition()):
                raise AssertionError(f'job {self.id} is {state} before {what}:\n'
                                     f'{self.tail()}')
            assert time.monotonic() < deadline, f'no {what} after {JOB_TIMEOUT} s:\n{self.tail()}'
            time.sleep(0.05)

    def wait_for_log(self, pattern):
        self.wait_until(lambda: re.search(pattern, '\n'.join(self.logs())), repr(pattern))

    def tail(self):
        return self.output.read_text()[-4000:] if self.output.exists() else '(no output yet)'


@pytest.fixture(scope='module')
def slurm_training(partition, cluster_reference, job_names):
    """The reference's training as an ``sbatch --requeue`` job of slurm_train.sh (2 tasks),
    preempted with ``scancel --signal=TERM`` early in epoch 2 and requeued; (job, seconds from
    the signal to the requeued start, seconds in all)."""
    reference = cluster_reference
    release = reference.root / 'slurm.release'
    config = write_cluster_config(reference.root / 'nl_c2d_slurm.py', reference.data,
                                  hooks=[hold_hook(HELD_AFTER, release)])
    work_dir = reference.root / 'slurm_train'
    job_name = job_names('train')
    job = BatchJob(
        ['--requeue', f'--job-name={job_name}', f'--partition={partition}',
         f'--ntasks={PROCESSES}', '--cpus-per-task=1'],
        shell_tool('slurm_train.sh', partition, job_name, config, work_dir, *TRAIN_ARGS,
                   '--auto-scale-lr', '--resume', '--cfg-options',
                   f'auto_scale_lr.base_batch_size={PROCESSES * TRAIN_BATCH}'),
        work_dir, env=dict(slurm_env(), OMP_NUM_THREADS='1', PYTHON=sys.executable,
                           PYTHONPATH=os.pathsep.join([ROOT, HELPERS])))
    held = [held_pid_file(release, rank) for rank in range(PROCESSES)]
    job.wait_until(lambda: all(os.path.isfile(path) for path in held), 'both tasks held')
    scancel = subprocess.run(['scancel', '--signal=TERM', job.id], capture_output=True, text=True)
    assert scancel.returncode == 0, scancel.stderr
    signalled = time.monotonic()
    job.wait_for_log('received SIGTERM: stopping after the current iteration')
    release.touch()
    job.wait_until(lambda: job.fields().get('Restarts') == '1' and
                   job.fields().get('JobState') == 'PENDING', 'the requeue')
    # slurmd refuses a job credential made in the second in which it revoked the job's last
    # one ('Killing non-startable batch JobId=N: Job credential revoked'); Slurm's own
    # two-minute hold avoids that, the lifted hold must start in a later second.
    pending_seen = int(time.time())
    while int(time.time()) <= pending_seen:
        time.sleep(0.05)
    subprocess.run(['scontrol', 'update', f'JobId={job.id}', 'StartTime=now'], check=True)
    job.wait_until(lambda: len(job.logs()) == 2, 'the requeued start')
    restarted = time.monotonic() - signalled
    job.wait_until(lambda: job.fields().get('JobState') == 'COMPLETED', 'the end')
    return job, restarted, time.monotonic() - job.started


def test_slurm_training_preempted_and_requeued_ends_with_the_torchrun_weights(
        partition, cluster_reference, slurm_training):
    job, restarted, seconds = slurm_training
    srun_lines = [line for line in job.output.read_text().splitlines()
                  if line.startswith('+ srun')]
    assert len(srun_lines) == 2
    assert all(f'--ntasks={PROCESSES}' in line and '--gres' not in line for line in srun_lines)
    stopped, resumed = job.logs()
    batch = PROCESSES * TRAIN_BATCH
    for log in (stopped, resumed):
        assert 'Distributed launcher: slurm' in log
        assert re.search(rf'--auto-scale-lr: base batch {batch} .*real batch {batch} '
                         rf'\({PROCESSES} processes x {TRAIN_BATCH} per process\)', log)
    work_dir = cluster_reference.root / 'slurm_train'
    checkpoint = work_dir / f'iter_{STOPPED_AFTER}.pth'
    # The signal came in time: the first start stopped after the iteration it was held
    # before, saved it and requeued its job; the second start trained only the rest.
    assert trained_iterations(stopped)[-1] == (2, STOPPED_AFTER - PER_EPOCH)
    assert f'Slurm job {job.id} requeued' in stopped
    assert load(checkpoint)['meta']['iter'] == STOPPED_AFTER
    assert f'--resume: resuming from {checkpoint}' in resumed
    assert trained_iterations(resumed) == [(2, index) for index in
                                           range(STOPPED_AFTER - PER_EPOCH + 1, PER_EPOCH + 1)]
    trained_twice = len(trained_iterations(stopped) + trained_iterations(resumed)) - TOTAL_ITERS
    saved = sorted(path.name for path in work_dir.glob('iter_*.pth'))
    assert saved == sorted({f'iter_{iteration}.pth' for iteration in
                            [*range(CHECKPOINT_INTERVAL, TOTAL_ITERS + 1, CHECKPOINT_INTERVAL),
                             STOPPED_AFTER]})
    assert_same_training_state(work_dir / FINAL_CHECKPOINT, cluster_reference.final_checkpoint)
    print(f'Slurm job: {seconds:.1f} s in all, {restarted:.1f} s from scancel --signal=TERM to '
          f'the requeued start, iterations trained twice: {trained_twice}')


def test_slurm_testing_dumps_what_torchrun_dumps(partition, cluster_reference,
                                                 cluster_reference_dump, slurm_training,
                                                 job_names):
    work_dir = cluster_reference.root / 'slurm_test'
    checkpoint = slurm_training[0].work_dir / FINAL_CHECKPOINT
    job_name = job_names('test')
    wait_all([CommandJob(shell_tool('slurm_test.sh', partition, job_name,
                                    cluster_reference.config, checkpoint,
                                    *dump_args(cluster_reference, work_dir)),
                         work_dir, work_dir.name, env=slurm_env())])
    assert len(load_dump(work_dir / 'results.pkl')['samples']) == TEST_VIDEOS
    assert_same_dump(work_dir / 'results.pkl', cluster_reference_dump)


@pytest.mark.parametrize('gres, gpus', [('gpu:8', '8'), ('gpu:a100:4(S:0-1)', '4'),
                                        ('craynetwork:1,gpu:2', '2'), ('(null)', '0')])
def test_gpus_per_node_are_read_from_the_partitions_gres(gres, gpus):
    """slurm_*.sh ask ``--gres=gpu:N`` with the partition's N, and none where it has no GPUs."""
    read = subprocess.run(['bash', '-c', 'source tools/slurm_resources.sh && gres_gpus "$1"',
                           'gres_gpus', gres], cwd=ROOT, capture_output=True, text=True)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == gpus
