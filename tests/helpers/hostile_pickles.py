"""Checkpoints whose pickle runs code, for the tests of nlnet's checkpoint allow-list.

torch's weights-only unpickler refuses ``os``, ``posix``, ``nt`` and ``sys`` globals
whatever the allow-list says, so payloads through those test nothing of nlnet. Each
payload here goes through a global torch leaves to the allow-list and, unpickled by
plain ``pickle``, harms a target folder: it writes a file into it or deletes it.
"""
import functools
import importlib
import os
import pickle
import shutil
import subprocess
import time
from typing import Callable, NamedTuple

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from .python2_pickles import write_python2_pickle

# The file the target folder is created with; any other change to the folder is harm.
KEPT = 'kept.txt'
PLANTED = 'planted_by_the_checkpoint'


class Call:
    """Pickles as the call ``func(*args)``: unpickling calls ``func``.

    ``func`` and ``args`` may hold other :class:`Call` objects; those calls are
    unpickled (run) first, so calls chain: ``Call(Call(getattr, obj, 'get'), key)``
    is ``obj.get(key)``.
    """

    def __init__(self, func, *args):
        self.func = func
        self.args = args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args):
        # pickle saves only callables as the function of a reduce; the call itself
        # happens when the file is unpickled, never on this object.
        raise TypeError('a Call stands for a call made while unpickling')


def _write_code(target):
    return f"open({os.path.join(target, PLANTED)!r}, 'w').close()"


def _touch_command(target):
    return ['touch', os.path.join(target, PLANTED)]


def _eval_through_getattr(target):
    """``HistoryBuffer.__init__.__globals__['__builtins__']['eval'](code)``: only getattr and
    the allowed HistoryBuffer as globals, the rest is attribute lookups and calls."""
    module_globals = Call(getattr, Call(getattr, HistoryBuffer, '__init__'), '__globals__')
    builtins_dict = Call(Call(getattr, module_globals, 'get'), '__builtins__')
    return Call(Call(Call(getattr, builtins_dict, 'get'), 'eval'), _write_code(target))


def _system_via(import_function, target):
    """``import_function('os').system('touch ...')``."""
    system = Call(getattr, Call(import_function, 'os'), 'system')
    return Call(system, ' '.join(_touch_command(target)))


class Attack(NamedTuple):
    """A payload builder (target folder -> object), the text the refusal of a torch
    checkpoint holding it must hold (the global torch's unpickler meets first, or the
    refused getattr call), and the first global of its pickle, which the official-pickle
    reader refuses (it allows no getattr at all)."""

    refusal: str
    build: Callable
    first_global: str


ATTACKS = {
    'builtins.eval': Attack('global builtins.eval', lambda target: Call(eval, _write_code(target)),
                            'builtins.eval'),
    'builtins.exec': Attack('global builtins.exec', lambda target: Call(exec, _write_code(target)),
                            'builtins.exec'),
    'builtins.open': Attack('global io.open',  # builtins.open is io.open
                            lambda target: Call(open, os.path.join(target, PLANTED), 'w'),
                            'io.open'),
    'builtins.getattr': Attack(f"getattr({HistoryBuffer!r}, '__init__')", _eval_through_getattr,
                               'builtins.getattr'),
    'builtins.__import__': Attack('global builtins.__import__',
                                  lambda target: _system_via(__import__, target),
                                  'builtins.getattr'),
    'importlib.import_module': Attack('global importlib.import_module',
                                      lambda target: _system_via(importlib.import_module, target),
                                      'builtins.getattr'),
    'subprocess.Popen': Attack('global subprocess.Popen',
                               lambda target: Call(subprocess.Popen, _touch_command(target)),
                               'subprocess.Popen'),
    'shutil.rmtree': Attack('global shutil.rmtree', lambda target: Call(shutil.rmtree, target),
                            'shutil.rmtree'),
    'functools.partial(eval)': Attack(
        'global functools.partial', lambda target: Call(functools.partial(eval, _write_code(target))),
        'functools.partial'),
    'pickle.loads': Attack('global pickle.loads', lambda target: Call(
        pickle.loads, pickle.dumps(Call(exec, _write_code(target)))), 'pickle.loads'),
}


def make_target(folder):
    """Create ``folder`` holding only :data:`KEPT`; returns its path."""
    os.makedirs(folder)
    with open(os.path.join(folder, KEPT), 'w') as handle:
        handle.write('the payload must leave this folder as it is\n')
    return str(folder)


def untouched(target):
    """Whether ``target`` still holds exactly what :func:`make_target` put there."""
    return os.path.isdir(target) and os.listdir(target) == [KEPT]


def save_hostile_checkpoint(path, attack, target, protocol=2):
    """A checkpoint with tensor weights and ``ATTACKS[attack]``'s payload in its meta,
    pickled with ``protocol`` (torch's default: 2)."""
    torch.save(dict(state_dict={'weight': torch.zeros(2)},
                    meta=dict(note=ATTACKS[attack].build(str(target)))), path,
               pickle_protocol=protocol)
    return str(path)


def save_hostile_official_pickle(path, attack, target, protocol):
    """A Python 2 pickle of ``protocol`` in the official Caffe2 layout (``dict(blobs=...)``,
    a numpy blob first) with ``ATTACKS[attack]``'s payload as the next blob."""
    blobs = {'conv1_w': np.zeros((2, 3, 1, 1, 1), np.float32),
             'pred_w': ATTACKS[attack].build(str(target))}
    return write_python2_pickle(path, dict(blobs=blobs), protocol)


def eventually(condition, seconds=10.0):
    """Whether ``condition()`` holds within ``seconds`` (a Popen payload's child runs on its own)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
