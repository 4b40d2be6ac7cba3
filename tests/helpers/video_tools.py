"""Generated demo videos, tiny demo configs and subprocess runners for the video tool tests.

The data is the real demo dataset (``tools/data/make_demo_dataset.py``) in
Kinetics' on-disk layout, plus annotation lists that add one truncated and
one missing video. The configs inherit the demo NL-C2D config and only shrink
the run (batch size 2, one epoch, checkpoints by iteration, no lr schedule).
"""
import glob
import os
import os.path as osp
import socket
import subprocess
import sys
from dataclasses import dataclass

from helpers.tool_modules import load_tool

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
HELPERS = osp.dirname(osp.abspath(__file__))


def _demo_config():
    # Found by pattern: the schedule part of the name follows the demo's tuning.
    found = glob.glob(osp.join(ROOT, 'configs', 'demo', 'nl-c2d_r18-tiny_*_demo-rgb.py'))
    assert len(found) == 1, f'expected one NL-C2D demo config, found {found}'
    return found[0]


DEMO_CONFIG = _demo_config()
TRAIN_BATCH = 2

make_demo = load_tool('data/make_demo_dataset.py')


@dataclass
class VideoData:
    """Paths of a generated demo dataset.

    ``*_ann`` list only readable videos; ``broken_*_ann`` add ``corrupt_*``
    (a real video cut in half) and ``missing_*`` (listed, not on disk).
    """

    root: str
    train_ann: str
    val_ann: str
    broken_train_ann: str
    broken_val_ann: str
    corrupt_train: str
    missing_train: str
    corrupt_val: str
    missing_val: str

    def videos(self, split):
        return osp.join(self.root, f'videos_{split}')


def _add_broken(root, split, ann_file):
    """Write ``broken_<split>.txt``: ``ann_file`` plus a truncated and a missing video."""
    with open(ann_file) as handle:
        lines = handle.read().splitlines()
    first = lines[0].split()[0]
    source = osp.join(root, f'videos_{split}', first)
    with open(source, 'rb') as handle:
        content = handle.read()
    class_dir = osp.dirname(first)
    corrupt = f'{class_dir}/corrupt_{split}.mp4'
    missing = f'{class_dir}/missing_{split}.mp4'
    with open(osp.join(root, f'videos_{split}', corrupt), 'wb') as handle:
        handle.write(content[:len(content) // 2])
    broken_ann = osp.join(root, f'broken_{split}.txt')
    with open(broken_ann, 'w') as handle:
        handle.write('\n'.join(lines + [f'{corrupt} 0', f'{missing} 1']) + '\n')
    prefix = osp.join(root, f'videos_{split}')
    return broken_ann, osp.join(prefix, corrupt), osp.join(prefix, missing)


def make_video_data(root, num_train, num_val, seed=0):
    """Generate the demo dataset under ``root`` and the broken variants of its lists."""
    ann = make_demo.make_demo_dataset(str(root), num_train, num_val, seed)
    broken_train = _add_broken(str(root), 'train', ann['train'])
    broken_val = _add_broken(str(root), 'val', ann['val'])
    return VideoData(str(root), ann['train'], ann['val'], broken_train[0], broken_val[0],
                     broken_train[1], broken_train[2], broken_val[1], broken_val[2])


def write_config(path, data, train_ann=None, extra='', train_workers=1):
    """Write a one-epoch NL-C2D demo config on ``data`` to ``path``.

    Args:
        train_ann (str | None): training list instead of ``data.train_ann``.
        extra (str): config lines appended as they are.
        train_workers (int): dataloader worker processes of training.
    """
    train_ann = train_ann or data.train_ann
    text = f"""_base_ = [{DEMO_CONFIG!r}]
train_dataloader = dict(
    batch_size={TRAIN_BATCH}, num_workers={train_workers}, persistent_workers=False,
    dataset=dict(ann_file={train_ann!r}, data_prefix=dict(video={data.videos('train')!r})))
val_dataloader = dict(
    batch_size={TRAIN_BATCH}, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file={data.val_ann!r}, data_prefix=dict(video={data.videos('val')!r})))
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(ann_file={data.val_ann!r}, data_prefix=dict(video={data.videos('val')!r})))
train_cfg = dict(max_epochs=1)
param_scheduler = []
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=2, by_epoch=False, max_keep_ckpts=-1, save_best=None))
"""
    with open(path, 'w') as handle:
        handle.write(text + extra)
    return str(path)


@dataclass
class ToolRun:
    returncode: int
    stdout: str
    stderr: str


def run_tool(args, out_dir, name, env=None, timeout=240):
    """Run ``args`` (a tool command line) in ``out_dir``.

    The tools run from ``out_dir`` because mmengine's distributed result
    collection leaves a ``.dist_test`` folder in the working directory. Output
    goes to files in ``out_dir`` rather than pipes: a killed trainer's orphaned
    dataloader worker would keep a pipe open for seconds.
    """
    full_env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable,
                    PYTHONPATH=os.pathsep.join([ROOT, HELPERS]))
    full_env.update(env or {})
    stdout_path = osp.join(out_dir, f'{name}.stdout')
    stderr_path = osp.join(out_dir, f'{name}.stderr')
    with open(stdout_path, 'w') as stdout, open(stderr_path, 'w') as stderr:
        process = subprocess.run([str(arg) for arg in args], cwd=out_dir, env=full_env,
                                 stdout=stdout, stderr=stderr, timeout=timeout)
    with open(stdout_path) as stdout, open(stderr_path) as stderr:
        return ToolRun(process.returncode, stdout.read(), stderr.read())


def python_tool(script, *args):
    """Command line running ``tools/<script>`` with this interpreter."""
    return [sys.executable, osp.join(ROOT, 'tools', script), *args]


def shell_tool(script, *args):
    """Command line running the shell script ``tools/<script>``."""
    return ['bash', osp.join(ROOT, 'tools', script), *args]


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_log(work_dir):
    """Text of the newest mmengine log file under ``work_dir`` (logs are named by start time)."""
    logs = sorted(glob.glob(osp.join(str(work_dir), '*', '*.log')))
    assert logs, f'no log file under {work_dir}'
    with open(logs[-1]) as handle:
        return handle.read()
