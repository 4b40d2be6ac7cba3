"""nlnet.datasets.video_check on real H.264 clips damaged inside their stream.

A clip encoded with libx264 and copies with flipped bytes or a zeroed range in the
middle of the coded frames (tests/helpers/h264_videos.py): some of them decode at
their first, middle and last frames and still fail in the frames between. The
checker's lists must hold only videos that the shipped Kinetics test pipeline reads
without a broken mark.
"""
import ast
import glob
import io
import json
import os.path as osp
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
from helpers.h264_videos import DAMAGE_KINDS, damaged_copy, write_h264_clip
from helpers.tool_modules import ROOT, load_tool
from mmaction.registry import DATASETS
from mmengine.config import Config

import nlnet.openmmlab  # noqa: F401
from nlnet.datasets import BrokenVideoError
from nlnet.datasets.video_check import CONFIG_VIEW_SAMPLINGS

DEFAULT_SCOPE = 'mmaction'
NUM_DAMAGED = 16
KINETICS_TEST = osp.join(ROOT, 'configs', '_base_', 'datasets', 'kinetics400_c2d-8x8x1.py')


def test_view_samplings_are_those_of_the_configs():
    """Every SampleFrames(test_mode=True) of configs/ (validation and test views)."""
    found = set()
    for path in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True):
        with open(path) as handle:
            for arguments in re.findall(r"type='SampleFrames',([^)]*)\)", handle.read()):
                values = {key.strip(): ast.literal_eval(value) for key, value in
                          (item.split('=') for item in arguments.split(',') if '=' in item)}
                if values.get('test_mode'):
                    found.add((values['clip_len'], values.get('frame_interval', 1),
                               values.get('num_clips', 1)))
    assert found == set(CONFIG_VIEW_SAMPLINGS)


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    """(folder, annotation list, names): the intact clip and NUM_DAMAGED damaged copies."""
    root = tmp_path_factory.mktemp('h264')
    intact = write_h264_clip(root / 'intact.mp4')
    with open(intact, 'rb') as handle:
        data = handle.read()
    rng = np.random.default_rng(0)
    names = ['intact.mp4']
    for index in range(NUM_DAMAGED):
        kind = DAMAGE_KINDS[index % 2]
        names.append(f'{kind}_{index:02d}.mp4')
        (root / names[-1]).write_bytes(damaged_copy(data, kind, rng))
    ann_file = root / 'list.txt'
    ann_file.write_text(''.join(f'{name} 0\n' for name in names))
    return root, str(ann_file), names


# The check the tool made before it had views: frames 0, n // 2 and n - 1. It runs in a fresh
# interpreter: decord's reading of a damaged stream depends on the process (in the full
# suite's process it once decoded fewer of these copies than in a process of its own), and
# the old check ran in a process of its own.
FIRST_MIDDLE_LAST = """
import json, sys
import decord
decoded = []
for path in sys.argv[1:]:
    try:
        reader = decord.VideoReader(path, num_threads=1)
        reader.get_batch(sorted({0, len(reader) // 2, len(reader) - 1})).asnumpy()
    except Exception:  # decord raises its own and runtime errors
        continue
    decoded.append(path)
print(json.dumps(decoded))
"""


def first_middle_last_decode(paths):
    """The ``paths`` whose frames 0, n // 2 and n - 1 decode, in a fresh interpreter."""
    run = subprocess.run([sys.executable, '-c', FIRST_MIDDLE_LAST, *paths], capture_output=True,
                         text=True, check=True)
    return json.loads(run.stdout)


def scan(root, ann_file, out_dir, *options):
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        returncode = load_tool('data/check_videos.py').main(
            [ann_file, str(root), '--workers', '1', '--out-dir', str(out_dir), *options])
    assert returncode == 0, stderr.getvalue()
    with open(out_dir / 'ok_list.txt') as handle:
        return [line.split()[0] for line in handle]


def test_listed_videos_read_without_a_broken_mark_through_the_test_pipeline(videos, tmp_path):
    root, ann_file, names = videos
    default = scan(root, ann_file, tmp_path / 'default')
    thorough = scan(root, ann_file, tmp_path / 'thorough', '--thorough')
    assert (tmp_path / 'thorough' / 'checked_thorough.tsv').is_file()
    assert set(thorough) <= set(default) and 'intact.mp4' in thorough
    assert 1 < len(thorough) < len(names)
    # The damage is of the kind the issue found: some copies decode at their first, middle
    # and last frames and fail elsewhere.
    undecided = [name for name in names if name not in default]
    decoded = set(first_middle_last_decode([str(root / name) for name in undecided]))
    missed_before = [name for name in undecided if str(root / name) in decoded]
    assert missed_before, (default, thorough)

    # The default list (a superset of the thorough one) through the shipped Kinetics C2D
    # test dataset: 10 clips x 3 crops, strict=False as configured.
    cfg = Config.fromfile(KINETICS_TEST).test_dataloader.dataset
    cfg.update(ann_file=str(tmp_path / 'default' / 'ok_list.txt'),
               data_prefix=dict(video=str(root)))
    dataset = DATASETS.build(cfg)
    assert not dataset.strict and len(dataset) == len(default)
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        assert sample.metainfo.get('broken_video') is None, sample.metainfo['broken_video']
    # What the old check let through and the default leaves out does not read there.
    (tmp_path / 'missed.txt').write_text(''.join(f'{name} 0\n' for name in missed_before))
    cfg.update(ann_file=str(tmp_path / 'missed.txt'), strict=True)
    strict = DATASETS.build(cfg)
    for index, name in enumerate(missed_before):
        with pytest.raises(BrokenVideoError, match=re.escape(name)):
            strict[index]
