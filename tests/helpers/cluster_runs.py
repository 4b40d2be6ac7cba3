"""Training jobs for the cluster tests (tests/test_cluster): the demo NL-C2D config at its
smallest two-epoch size, ``tools/dist_train.sh`` jobs started in the background and
watched through their log, and the comparison of two runs' training state.

The run: 16 generated demo videos, 2 processes x batch 2, so 4 iterations per epoch
and 8 in all; an iteration checkpoint every 2 iterations (``iter_2.pth`` ...
``iter_8.pth``), seed 0, deterministic algorithms, no validation.
"""
import glob
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

from helpers.hold_hook import held_pid_file
from helpers.nested_equal import assert_nested_equal
from helpers.video_tools import HELPERS, ROOT, TRAIN_BATCH, free_port, shell_tool, write_config
from mmengine.runner.checkpoint import CheckpointLoader

NUM_TRAIN = 16
PROCESSES = 2
EPOCHS = 2
PER_EPOCH = NUM_TRAIN // (TRAIN_BATCH * PROCESSES)
TOTAL_ITERS = EPOCHS * PER_EPOCH
CHECKPOINT_INTERVAL = 2
FINAL_CHECKPOINT = f'iter_{TOTAL_ITERS}.pth'
TRAIN_ARGS = ('--seed', '0', '--deterministic', '--no-validate')
# Longest a cluster test waits for a job or a log line.
JOB_TIMEOUT = 240

SCHEDULE = f"""
train_cfg = dict(max_epochs={EPOCHS})
log_processor = dict(window_size=1)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval={CHECKPOINT_INTERVAL}, by_epoch=False, max_keep_ckpts=-1,
                    save_best=None))
"""


def write_cluster_config(path, data, hooks=(), train_workers=1):
    """The two-epoch demo config on ``data``, with extra ``custom_hooks`` from tests/helpers.

    Args:
        hooks (Sequence[str]): config dicts (as text) appended to the base config's
            custom hooks; the modules of tests/helpers named in them are imported.
        train_workers (int): dataloader worker processes of training.
    """
    extra = SCHEDULE
    if hooks:
        extra += ("custom_imports = dict(imports=['nlnet.openmmlab', 'hold_hook', 'save_signal_hook'], "
                  'allow_failed_imports=False)\n'
                  "custom_hooks = [dict(type='RankLogHook'), dict(type='BrokenVideoHook'), "
                  f"{', '.join(hooks)}]\n")
    return write_config(path, data, extra=extra, train_workers=train_workers)


def hold_hook(iteration, release):
    """Config text of a :class:`~helpers.hold_hook.HoldBeforeIterHook`."""
    return f"dict(type='HoldBeforeIterHook', iteration={iteration}, release={str(release)!r})"


def signal_during_save_hook(iteration, signal_name='SIGTERM'):
    """Config text of a :class:`~helpers.save_signal_hook.SignalDuringSaveHook`."""
    return f"dict(type='SignalDuringSaveHook', iteration={iteration}, signal_name={signal_name!r})"


def trained_iterations(log):
    """``[(epoch, index in the epoch)]`` of the training iterations logged in ``log``."""
    return [(int(epoch), int(index)) for epoch, index in
            re.findall(rf'Epoch\(train\) \[(\d+)\]\[(\d+)/{PER_EPOCH}\]', log)]


def iteration_line(epoch, index):
    """The log line pattern of training iteration ``index`` (1-based) of ``epoch``."""
    return rf'Epoch\(train\) \[{epoch}\]\[{index}/{PER_EPOCH}\]'


class Job:
    """A ``tools/dist_train.sh`` job in the background, in its own process group.

    stdout and stderr go to files beside the work dir (``<name>.stdout`` /
    ``.stderr``): a killed worker's orphaned dataloader process would keep a pipe
    open.
    """

    def __init__(self, config, work_dir, *args, env=None):
        command = shell_tool('dist_train.sh', config, str(PROCESSES), '--work-dir',
                             str(work_dir), *TRAIN_ARGS, *args)
        self._start(command, work_dir, osp.basename(str(work_dir)),
                    dict(PORT=str(free_port()), **(env or {})))

    def _start(self, command, work_dir, name, env):
        """Start ``command`` in a session of its own, its output in ``<name>.stdout`` /
        ``.stderr`` beside ``work_dir``; ``env`` goes on top of this process's,
        ``OMP_NUM_THREADS=1``, ``PYTHON`` (this interpreter) and ``PYTHONPATH`` (the
        repository and tests/helpers), a value None removing the variable."""
        self.work_dir = str(work_dir)
        out_dir = osp.dirname(self.work_dir)
        self.stdout_path = osp.join(out_dir, f'{name}.stdout')
        self.stderr_path = osp.join(out_dir, f'{name}.stderr')
        full_env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable,
                        PYTHONPATH=os.pathsep.join([ROOT, HELPERS]))
        for key, value in env.items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        self.started = time.monotonic()
        with open(self.stdout_path, 'w') as stdout, open(self.stderr_path, 'w') as stderr:
            self.process = subprocess.Popen([str(arg) for arg in command], cwd=out_dir,
                                            env=full_env, stdout=stdout, stderr=stderr,
                                            start_new_session=True)

    def logs(self):
        """Text of every mmengine log of the work dir (one per start), oldest first."""
        texts = []
        for path in sorted(glob.glob(osp.join(self.work_dir, '*', '*.log'))):
            with open(path) as handle:
                texts.append(handle.read())
        return texts

    def stderr(self):
        with open(self.stderr_path) as handle:
            return handle.read()

    def wait_for_log(self, pattern, count=1):
        """Wait until ``pattern`` has appeared ``count`` times in the logs; fail if the job ends."""
        deadline = time.monotonic() + JOB_TIMEOUT
        while time.monotonic() < deadline:
            if len(re.findall(pattern, '\n'.join(self.logs()))) >= count:
                return
            if self.process.poll() is not None:
                raise AssertionError(f'the job ended ({self.process.returncode}) before the log '
                                     f'showed {pattern!r}:\n{self.stderr()[-4000:]}')
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f'no {pattern!r} in the log after {JOB_TIMEOUT} s (job killed):\n'
                             f'{self.stderr()[-4000:]}')

    def held_pids(self, release):
        """{rank: pid} of the ranks held by a HoldBeforeIterHook with ``release``, once all are."""
        deadline = time.monotonic() + JOB_TIMEOUT
        files = [held_pid_file(release, rank) for rank in range(PROCESSES)]
        while not all(osp.isfile(path) for path in files):
            assert self.process.poll() is None, self.stderr()[-4000:]
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError(f'ranks not held after {JOB_TIMEOUT} s (job killed)')
            time.sleep(0.02)
        pids = {}
        for rank, path in enumerate(files):
            with open(path) as handle:
                pids[rank] = int(handle.read())
        return pids

    def signal(self, signum):
        """Send ``signum`` to the job (the dist_train.sh process), as a scheduler does."""
        self.process.send_signal(signum)

    def wait(self):
        """The job's exit status once it has ended; its stray processes are killed."""
        try:
            return self.process.wait(timeout=JOB_TIMEOUT)
        finally:
            self.seconds = time.monotonic() - self.started
            self.kill()

    def kill(self):
        """SIGKILL every process of the job, so that a failed test leaves none behind."""
        for pid in self.session_processes:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    @property
    def session_processes(self):
        """Pids of the job's processes: its descendants, and the processes of their sessions
        (torchrun starts each worker in a session of its own)."""
        parents, sessions = {}, {}
        for entry in filter(str.isdigit, os.listdir('/proc')):
            try:
                with open(f'/proc/{entry}/stat') as handle:
                    fields = handle.read().rsplit(')', 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            parents[int(entry)], sessions[int(entry)] = int(fields[1]), int(fields[3])
        found = {self.process.pid}
        grown = True
        while grown:
            more = {pid for pid, parent in parents.items() if parent in found} | \
                {pid for pid, session in sessions.items() if session in found}
            grown = not more <= found
            found |= more
        return sorted(found)


def run_job(config, work_dir, *args, env=None):
    """Run a dist_train.sh job to its end; fail unless it succeeds."""
    job = Job(config, work_dir, *args, env=env)
    returncode = job.wait()
    assert returncode == 0, job.stderr()[-4000:]
    return job


def load(path):
    return CheckpointLoader.load_checkpoint(str(path), map_location='cpu')


def assert_same_training_state(path, reference_path):
    """The checkpoints' weights and optimizer states are equal tensor for tensor."""
    ours, theirs = load(path), load(reference_path)
    assert ours['meta']['iter'] == theirs['meta']['iter']
    assert_nested_equal(ours['state_dict'], theirs['state_dict'], 'state_dict')
    assert_nested_equal(ours['optimizer'], theirs['optimizer'], 'optimizer')
