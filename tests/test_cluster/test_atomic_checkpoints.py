"""Checkpoints are crash-safe (issue 25, item 4).

* A save killed at any byte of the checkpoint or of ``last_checkpoint`` leaves
  the previous files complete and ``last_checkpoint`` naming a complete one
  (the writer is a forked child of this process, killed by the kernel at a
  chosen byte: ``SIGXFSZ`` at ``RLIMIT_FSIZE``).
* ``--resume`` without a value passes over a partial newest checkpoint, says
  which and why, and takes the newest one that reads completely.
* A full disk during a save stops ``tools/train.py`` with one line naming the
  file and the space it needs; the previous checkpoint stays and reads
  completely (with ``max_keep_ckpts=1``, which made mmengine delete it before
  the save).
"""
import os
import os.path as osp
import resource
import shutil
import signal
import subprocess

import pytest
from helpers.cluster_runs import CHECKPOINT_INTERVAL, load
from helpers.video_tools import python_tool, run_tool, write_config
from mmengine.config import Config

from nlnet.engine.resume_selection import newest_intact_checkpoint, select_resume_checkpoint
from nlnet.utils.atomic_save import CheckpointSaveError, atomic_write, interrupted_saves

PREVIOUS, NEW = f'iter_{3 * CHECKPOINT_INTERVAL}.pth', f'iter_{4 * CHECKPOINT_INTERVAL}.pth'


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()


def save_killed_at(work_dir, content, killed_file, killed_at):
    """Write ``content`` as NEW, then point last_checkpoint at it, as a checkpoint save does,
    in a forked child that the kernel kills when ``killed_file`` reaches ``killed_at`` bytes;
    return the child's wait status."""
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
            limit = (killed_at, resource.getrlimit(resource.RLIMIT_FSIZE)[1])
            if killed_file == NEW:
                resource.setrlimit(resource.RLIMIT_FSIZE, limit)
            atomic_write(str(work_dir / NEW), content)
            resource.setrlimit(resource.RLIMIT_FSIZE, limit)
            atomic_write(str(work_dir / 'last_checkpoint'), str(work_dir / NEW))
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1]


@pytest.fixture
def work_dir(cluster_reference, tmp_path):
    """A work dir holding the reference's PREVIOUS checkpoint, named by last_checkpoint."""
    shutil.copy(cluster_reference.work_dir / PREVIOUS, tmp_path / PREVIOUS)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / PREVIOUS))
    return tmp_path


@pytest.mark.parametrize('killed_file, killed_at', [
    (NEW, 'first byte'), (NEW, 'middle'), (NEW, 'last byte'), ('last_checkpoint', 'middle')])
def test_a_save_killed_at_any_byte_leaves_complete_checkpoints_only(
        cluster_reference, work_dir, killed_file, killed_at):
    size = osp.getsize(cluster_reference.work_dir / NEW) if killed_file == NEW else \
        len(str(work_dir / NEW))
    offset = {'first byte': 0, 'middle': size // 2, 'last byte': size - 1}[killed_at]
    status = save_killed_at(work_dir, read(cluster_reference.work_dir / NEW), killed_file, offset)
    # The kernel killed the writer in the middle of the file, not after it.
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXFSZ

    assert read(work_dir / PREVIOUS) == read(cluster_reference.work_dir / PREVIOUS)
    if killed_file == NEW:
        assert not (work_dir / NEW).exists()
        assert (work_dir / 'last_checkpoint').read_text() == str(work_dir / PREVIOUS)
    else:
        assert read(work_dir / NEW) == read(cluster_reference.work_dir / NEW)
        assert (work_dir / 'last_checkpoint').read_text() == str(work_dir / PREVIOUS)
    leftover, = interrupted_saves(str(work_dir))
    assert osp.basename(leftover).startswith(f'.{killed_file}.')
    newest, skipped = newest_intact_checkpoint(str(work_dir))
    assert skipped == []
    assert newest == str(work_dir / (PREVIOUS if killed_file == NEW else NEW))


def test_resume_passes_over_a_partial_newest_checkpoint_and_says_why(cluster_reference,
                                                                   work_dir):
    # What a save written in place leaves when it is killed: the first half of the file,
    # newer than every complete checkpoint, and last_checkpoint naming it.
    complete = read(cluster_reference.work_dir / NEW)
    (work_dir / NEW).write_bytes(complete[:len(complete) // 2])
    (work_dir / 'last_checkpoint').write_text(str(work_dir / NEW))
    cfg = Config(dict(work_dir=str(work_dir), resume=True, load_from=None))

    selection = select_resume_checkpoint(cfg)

    assert cfg.load_from == selection.checkpoint == str(work_dir / PREVIOUS)
    skipped, chosen = selection.messages
    assert skipped[1].startswith(f'--resume: skipped {work_dir / NEW}, which does not read '
                                 'completely (CorruptCheckpointError: ')
    assert 'truncated' in skipped[1]
    assert chosen[1] == (f'--resume: resuming from {work_dir / PREVIOUS}, the newest intact '
                         f'checkpoint of {work_dir}')


def test_a_full_disk_stops_training_with_one_line_and_the_previous_checkpoint_intact(
        cluster_reference, tmp_path):
    limit = 2**20
    config = write_config(
        tmp_path / 'nl_c2d_full_disk.py', cluster_reference.data, extra=f"""
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval={CHECKPOINT_INTERVAL}, by_epoch=False, max_keep_ckpts=1,
                    save_best=None))
custom_imports = dict(imports=['nlnet.openmmlab', 'file_size_limit_hook'], allow_failed_imports=False)
custom_hooks = [dict(type='RankLogHook'), dict(type='BrokenVideoHook'),
                dict(type='FileSizeLimitHook', iteration={CHECKPOINT_INTERVAL}, limit={limit})]
""")
    work_dir = tmp_path / 'full_disk'
    run = run_tool(python_tool('train.py', config, '--work-dir', work_dir, '--seed', '0',
                               '--no-validate'), tmp_path, 'full_disk')

    assert run.returncode == 1, run.stderr[-4000:]
    failed = work_dir / f'iter_{2 * CHECKPOINT_INTERVAL}.pth'
    assert 'Traceback' not in run.stderr
    last_line = run.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f'train.py: error: cannot save {failed}: File too large; the '
                                'file needs ')
    assert f'but files are limited to 1.0 MiB ({limit} bytes) (ulimit -f)' in last_line
    assert not failed.exists() and interrupted_saves(str(work_dir)) == []
    previous = work_dir / f'iter_{CHECKPOINT_INTERVAL}.pth'
    assert (work_dir / 'last_checkpoint').read_text() == str(previous)
    assert newest_intact_checkpoint(str(work_dir)) == (str(previous), [])
    assert load(previous)['meta']['iter'] == CHECKPOINT_INTERVAL


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs, where the test may mount one (root)."""
    mount_point = tmp_path / 'tmpfs'
    mount_point.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here: {mounted.stderr.strip()}')
    yield mount_point
    subprocess.run(['umount', str(mount_point)], check=True)


def test_no_space_left_names_the_file_and_the_space_needed_and_free(small_tmpfs):
    target = small_tmpfs / 'iter_2.pth'
    atomic_write(str(target), b'previous')
    with pytest.raises(CheckpointSaveError) as error:
        atomic_write(str(target), bytes(2**21))
    message = str(error.value)
    assert '\n' not in message
    assert message.startswith(f'cannot save {target}: No space left on device; the file needs '
                              f'2.0 MiB ({2**21} bytes) and {small_tmpfs} has ')
    assert message.endswith('The earlier checkpoints are intact: make room, then continue with '
                            '--resume')
    assert read(target) == b'previous' and os.listdir(small_tmpfs) == ['iter_2.pth']
