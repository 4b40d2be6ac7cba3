"""tools/data/make_charades_demo.py: the Charades_v1 layout, deterministic, arguments checked."""
import csv
import filecmp
import subprocess
import sys

import decord
import numpy as np
from helpers.charades_data import make_charades_demo
from helpers.video_tools import ROOT

import nlnet.openmmlab  # noqa: F401
from nlnet.datasets.charades import load_charades_classes, parse_actions

TOOL = f'{ROOT}/tools/data/make_charades_demo.py'


def test_layout_and_videos_show_their_actions(tmp_path):
    paths = make_charades_demo.make_charades_demo(str(tmp_path), num_train=4, num_test=2, seed=3)
    classes = load_charades_classes(paths['classes'])
    assert classes[0] == 'c000' and classes[-1] == 'c156' and len(classes) == 157
    index = {name: i for i, name in enumerate(classes)}
    with open(paths['train'], newline='') as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(make_charades_demo.CSV_COLUMNS) and len(rows) == 4
    for row in rows:
        spans = parse_actions(row['actions'], index, paths['train'])
        reader = decord.VideoReader(f'{paths["videos"]}/{row["id"]}.mp4')
        assert len(reader) == 40 and reader.get_avg_fps() == 8
        frames = reader.get_batch(list(range(40))).asnumpy()
        for span in spans:
            top, left = make_charades_demo.PLACES[span.label]
            # The action's square is bright on the frames its span covers and dark elsewhere.
            patch = frames[:, top + 4:top + 8, left + 4:left + 8].max(axis=(1, 2, 3))
            times = np.arange(40) / 8
            on = (times >= span.start) & (times <= span.end)
            assert (patch[on] > 128).all() and (patch[~on] < 64).all(), (row['id'], span)


def test_same_seed_same_bytes_and_bad_arguments_are_named(tmp_path):
    first = make_charades_demo.make_charades_demo(str(tmp_path / 'a'), 2, 1, seed=5)
    second = make_charades_demo.make_charades_demo(str(tmp_path / 'b'), 2, 1, seed=5)
    for key in ('train', 'test', 'classes'):
        assert filecmp.cmp(first[key], second[key], shallow=False)
    assert filecmp.cmp(f'{first["videos"]}/TR001.mp4', f'{second["videos"]}/TR001.mp4',
                       shallow=False)
    run = subprocess.run([sys.executable, TOOL, '--out-dir', str(tmp_path / 'c'),
                          '--num-actions', '9'], capture_output=True, text=True)
    assert run.returncode == 1 and 'num_actions must be in 1..4, got 9' in run.stderr
    run = subprocess.run([sys.executable, TOOL, '--out-dir', str(tmp_path / 'c'), '--fps', '0'],
                         capture_output=True, text=True)
    assert run.returncode == 1 and '--fps must be >= 1, got 0' in run.stderr
