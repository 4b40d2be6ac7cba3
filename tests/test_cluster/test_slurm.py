"""tools/slurm_train.sh and tools/slurm_test.sh under a real Slurm (issue 25 item 5).

The cluster is the one-machine Slurm of ``tools/ci/start_slurm.sh`` (``.ci/run``
starts it; 1 node, 2 CPUs, no GPUs). One training job, 2 tasks of
``tools/train.py --launcher slurm`` over gloo with ``--auto-scale-lr``, and one
testing job of its final checkpoint with ``--dump`` are checked for what a user
relies on: the world size Slurm gave reaches the lr scaling, the checkpoints are
written, the weights and optimizer state equal the 1 node x 2 processes torchrun
reference's (``cluster_reference``) tensor for tensor, and the dump equals the
torchrun one (``cluster_reference_dump``).

``auto_scale_lr.base_batch_size`` is set to the real batch (2 tasks x 2 videos),
so that the scaled lr is the reference's: a task that saw another world size
would log another batch and train with another lr.

Where Slurm is not installed or does not answer, these tests skip, saying which
command failed and how.
"""
import os
import re
import shutil
import subprocess

import pytest
from helpers.cluster_launches import (TEST_VIDEOS, CommandJob, assert_same_dump, dump_args,
                                      load_dump, wait_all)
from helpers.cluster_runs import (CHECKPOINT_INTERVAL, FINAL_CHECKPOINT, PROCESSES, TOTAL_ITERS,
                                  TRAIN_ARGS, assert_same_training_state)
from helpers.video_tools import ROOT, TRAIN_BATCH, free_port, shell_tool

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
    rows = [line.split('|') for line in sinfo.stdout.split()]
    usable = [partition.rstrip('*') for partition, state, cpus in rows
              if partition.endswith('*') and state in ('idle', 'mixed', 'allocated')
              and int(cpus.rstrip('+')) >= PROCESSES]
    if not usable:
        return None, (f'no node of the default partition is up with {PROCESSES} CPUs: '
                      f'`sinfo -h -o %P|%T|%c` says {sinfo.stdout.strip()!r} {sinfo.stderr.strip()}')
    return usable[0], ''


@pytest.fixture(scope='module')
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


@pytest.fixture(scope='module')
def slurm_training(cluster_reference, partition, job_names):
    """The reference's training as a Slurm job of 2 tasks with --auto-scale-lr; its job."""
    work_dir = cluster_reference.root / 'slurm_train'
    job_name = job_names('train')
    job = CommandJob(shell_tool('slurm_train.sh', partition, job_name, cluster_reference.config,
                                work_dir, *TRAIN_ARGS, '--auto-scale-lr', '--cfg-options',
                                f'auto_scale_lr.base_batch_size={PROCESSES * TRAIN_BATCH}'),
                     work_dir, work_dir.name, env=slurm_env())
    wait_all([job])
    return job


def test_slurm_training_of_2_cpu_tasks_ends_with_the_torchrun_weights(cluster_reference,
                                                                     slurm_training):
    srun_line = next(line for line in slurm_training.stderr().splitlines()
                     if line.startswith('+ srun'))
    assert f'--ntasks={PROCESSES}' in srun_line and '--gres' not in srun_line
    log = slurm_training.logs()[-1]
    assert 'Distributed launcher: slurm' in log
    batch = PROCESSES * TRAIN_BATCH
    assert re.search(rf'--auto-scale-lr: base batch {batch} .*real batch {batch} '
                     rf'\({PROCESSES} processes x {TRAIN_BATCH} per process\)', log)
    work_dir = cluster_reference.root / 'slurm_train'
    saved = sorted(path.name for path in work_dir.glob('iter_*.pth'))
    assert saved == sorted(f'iter_{iteration}.pth' for iteration in
                           range(CHECKPOINT_INTERVAL, TOTAL_ITERS + 1, CHECKPOINT_INTERVAL))
    assert_same_training_state(work_dir / FINAL_CHECKPOINT, cluster_reference.final_checkpoint)


def test_slurm_testing_dumps_what_torchrun_dumps(cluster_reference, cluster_reference_dump,
                                                 slurm_training, partition, job_names):
    work_dir = cluster_reference.root / 'slurm_test'
    checkpoint = cluster_reference.root / 'slurm_train' / FINAL_CHECKPOINT
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
