"""The uninterrupted reference run that every cluster test compares with.

``cluster_reference`` (session scope) trains, once per test session, the
two-epoch demo run of :mod:`helpers.cluster_runs` with ``tools/dist_train.sh``:
1 node x 2 processes over gloo, ``--seed 0 --deterministic --no-validate``,
iteration checkpoints every 2 iterations. Tests that interrupt, restart, resume
or launch the same training differently (other node counts, Slurm) start from
``reference.data`` / ``reference.config`` and compare their final checkpoint
with ``reference.final_checkpoint`` by
:func:`helpers.cluster_runs.assert_same_training_state` (weights and optimizer
state, ``torch.equal``).
"""
from dataclasses import dataclass

import pytest
from helpers.cluster_launches import dump_reference
from helpers.cluster_runs import (FINAL_CHECKPOINT, NUM_TRAIN, run_job, write_cluster_config)
from helpers.video_tools import VideoData, make_video_data


@dataclass
class ReferenceRun:
    """The uninterrupted run.

    Attributes:
        data: the generated demo videos (16 training, 1 validation).
        config: the config file it trained (no test hooks).
        root: a session folder for the tests' own work dirs and configs.
        work_dir: its work dir (logs, ``iter_2.pth`` ... ``iter_8.pth``).
        final_checkpoint: ``work_dir/iter_8.pth``.
        seconds: its wall time.
    """

    data: VideoData
    config: str
    root: object
    work_dir: object
    final_checkpoint: object
    seconds: float


@pytest.fixture(scope='session')
def cluster_reference(tmp_path_factory):
    root = tmp_path_factory.mktemp('cluster')
    data = make_video_data(root / 'demo', NUM_TRAIN, 1)
    config = write_cluster_config(root / 'nl_c2d_cluster.py', data)
    work_dir = root / 'reference'
    job = run_job(config, work_dir)
    return ReferenceRun(data, config, root, work_dir, work_dir / FINAL_CHECKPOINT, job.seconds)


@pytest.fixture(scope='session')
def cluster_reference_dump(cluster_reference):
    """The ``--dump`` of the reference's final checkpoint, tested 1 node x 2 processes
    (:func:`helpers.cluster_launches.dump_reference`), for the multi-node and Slurm tests."""
    return dump_reference(cluster_reference)
