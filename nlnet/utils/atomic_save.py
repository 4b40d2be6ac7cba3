"""Checkpoints written whole or not at all.

mmengine writes a checkpoint by opening its final name and writing into it, and
``last_checkpoint`` the same way: a kill, a crash or a full disk in the middle
leaves a truncated ``epoch_N.pth`` / ``iter_N.pth``, or a ``last_checkpoint``
naming one, and ``--resume`` then fails or loads garbage. Here every file is
written to a temporary file in the same directory (``.<name>.<pid>.tmp``),
flushed to the disk and renamed into place (``os.replace``, atomic within a
file system): the final name holds either the previous complete file or the new
complete one. A save that finds no room (full disk, quota, file size limit)
removes its temporary file and raises :class:`CheckpointSaveError`, one line
naming the file, the space it needs and the space there is.

:class:`AtomicLocalBackend` is the mmengine file backend that writes this way;
:class:`~nlnet.hooks.atomic_checkpoint_hook.AtomicCheckpointHook` uses it for
local checkpoint directories.
"""
import errno
import glob
import os
import os.path as osp
import re
import resource
import shutil
from contextlib import suppress

from mmengine.fileio import LocalBackend, register_backend

__all__ = [
    'ATOMIC_BACKEND_ARGS', 'AtomicLocalBackend', 'CheckpointSaveError', 'atomic_write',
    'interrupted_saves'
]

# mmengine ``backend_args`` selecting :class:`AtomicLocalBackend`.
ATOMIC_BACKEND_ARGS = dict(backend='nlnet_atomic_local')
# What a write reports when the file system has no room for it.
NO_ROOM_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
TEMPORARY_NAME = re.compile(r'^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$')


class CheckpointSaveError(Exception):
    """A checkpoint could not be written for lack of room; the message is one line."""


def _temporary_path(path):
    return osp.join(osp.dirname(path), f'.{osp.basename(path)}.{os.getpid()}.tmp')


def _mib(size):
    return f'{size / 2**20:.1f} MiB ({size} bytes)'


def _no_room_message(path, size, error):
    directory = osp.dirname(path)
    message = (f'cannot save {path}: {error.strerror}; the file needs {_mib(size)} and '
               f'{directory} has {_mib(shutil.disk_usage(directory).free)} free')
    if error.errno == errno.EFBIG:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY:
            message += f', but files are limited to {_mib(limit)} (ulimit -f)'
    return (f'{message}. The earlier checkpoints are intact: make room, then continue with '
            '--resume')


def _fsync_directory(directory):
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def atomic_write(path, data):
    """Write ``data`` to ``path`` so that ``path`` never holds a part of it.

    Args:
        path (str): the final file name.
        data (bytes | str): the whole content (text is written as UTF-8).

    Raises:
        CheckpointSaveError: no room for the file (``ENOSPC``, ``EDQUOT``,
            ``EFBIG``); ``path`` and the directory are as they were.
    """
    if isinstance(data, str):
        data = data.encode('utf-8')
    path = osp.abspath(path)
    os.makedirs(osp.dirname(path), exist_ok=True)
    temporary = _temporary_path(path)
    try:
        with open(temporary, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        with suppress(FileNotFoundError):
            os.remove(temporary)
        if error.errno in NO_ROOM_ERRNOS:
            raise CheckpointSaveError(_no_room_message(path, len(data), error)) from error
        raise
    _fsync_directory(osp.dirname(path))


def interrupted_saves(directory):
    """Temporary files of :func:`atomic_write` in ``directory`` whose writer has exited."""
    found = []
    for path in sorted(glob.glob(osp.join(directory, '.*.tmp'))):
        match = TEMPORARY_NAME.match(osp.basename(path))
        if match is None:
            continue
        try:
            os.kill(int(match['pid']), 0)
        except ProcessLookupError:
            found.append(path)
        except PermissionError:
            pass
    return found


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose ``put`` and ``put_text`` use :func:`atomic_write`."""

    def put(self, obj, filepath):
        atomic_write(str(filepath), obj)

    def put_text(self, obj, filepath, encoding='utf-8'):
        atomic_write(str(filepath), obj.encode(encoding))


register_backend(ATOMIC_BACKEND_ARGS['backend'], AtomicLocalBackend, force=True)
