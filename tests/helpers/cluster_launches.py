"""Launches other than ``tools/dist_train.sh`` (one node of several, ``srun``) as cluster
test jobs, and the test runs' ``--dump`` files: the reference's and their comparison.

The test runs score the first :data:`TEST_VIDEOS` training videos (the demo data's one
validation video would leave rank 1 of 2 a padding copy of it).
"""
import pickle

from helpers.cluster_runs import PROCESSES, Job
from helpers.nested_equal import assert_nested_equal
from helpers.video_tools import free_port, shell_tool

TEST_VIDEOS = 3

# What a dump records about where it came from, not what the model predicted.
DUMP_PROVENANCE = ('config', 'checkpoint')


class CommandJob(Job):
    """A :class:`~helpers.cluster_runs.Job` that runs ``command`` instead of dist_train.sh.

    Args:
        command (Sequence): the command line.
        work_dir (str | Path): the run's work dir, whose logs :meth:`wait_for_log` reads.
        name (str): stem of the ``.stdout`` / ``.stderr`` files beside ``work_dir``.
        env (dict | None): environment on top of this process's, ``OMP_NUM_THREADS=1``,
            ``PYTHON`` (this interpreter) and ``PYTHONPATH`` (the repository and tests/helpers);
            a value None removes the variable.
    """

    def __init__(self, command, work_dir, name, env=None):
        self._start(command, work_dir, name, env or {})

    def stdout(self):
        with open(self.stdout_path) as handle:
            return handle.read()


def wait_all(jobs):
    """Wait for every job; fail naming each one that did not succeed."""
    codes = [job.wait() for job in jobs]
    failed = [f'{job.stderr_path} (exit {code}):\n{job.stderr()[-3000:]}'
              for job, code in zip(jobs, codes) if code != 0]
    assert not failed, '\n'.join(failed)


def dump_args(reference, work_dir):
    """tools/test.py arguments: test the first training videos, dump to ``work_dir/results.pkl``.

    Args:
        reference (ReferenceRun): the ``cluster_reference`` run, whose data is tested.
        work_dir (Path): the test run's work dir.
    """
    test_list = reference.root / f'first_{TEST_VIDEOS}_train_videos.txt'
    if not test_list.is_file():
        with open(reference.data.train_ann) as handle:
            lines = handle.read().splitlines()[:TEST_VIDEOS]
        test_list.write_text('\n'.join(lines) + '\n')
    return ('--work-dir', work_dir, '--dump', work_dir / 'results.pkl', '--cfg-options',
            f'test_dataloader.dataset.ann_file={test_list}',
            f'test_dataloader.dataset.data_prefix.video={reference.data.videos("train")}')


def dump_reference(reference):
    """Test the reference's final checkpoint with tools/dist_test.sh, 1 node x 2 processes.

    Returns:
        Path: its ``--dump`` file.
    """
    work_dir = reference.root / 'reference_test'
    wait_all([CommandJob(shell_tool('dist_test.sh', reference.config, reference.final_checkpoint,
                                    str(PROCESSES), *dump_args(reference, work_dir)),
                         work_dir, work_dir.name, env=dict(PORT=str(free_port())))])
    return work_dir / 'results.pkl'


def load_dump(path):
    with open(path, 'rb') as handle:
        return pickle.load(handle)


def assert_same_dump(ours, theirs):
    """Two ``--dump`` files hold the same results, exactly (arrays by ``np.array_equal``)."""
    ours, theirs = load_dump(ours), load_dump(theirs)
    assert ours.keys() == theirs.keys()
    for key in ours.keys() - set(DUMP_PROVENANCE):
        assert_nested_equal(ours[key], theirs[key], key)
