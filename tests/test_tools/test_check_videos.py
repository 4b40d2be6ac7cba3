"""tools/data/check_videos.py and nlnet.datasets.video_check on generated Kinetics-layout videos
with every kind of broken file mixed in."""
import io
import os.path as osp
from contextlib import redirect_stderr, redirect_stdout

import pytest
from helpers.broken_videos import add_broken_videos
from helpers.tool_modules import load_tool
from helpers.video_tools import DEMO_CONFIG, make_video_data
from mmaction.registry import DATASETS
from mmengine.config import Config

import nlnet.openmmlab  # noqa: F401
from nlnet.datasets.video_check import PROGRESS_NAME, scan_videos

DEFAULT_SCOPE = 'mmaction'
NUM_TRAIN = 6
# A class whose only listed video is missing: the summary must name it.
EMPTY_CLASS = '7'
check_videos = load_tool('data/check_videos.py')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('kinetics_like')
    videos = make_video_data(root, NUM_TRAIN, 1)
    ann_file, broken = add_broken_videos(videos.root, 'train', videos.train_ann)
    with open(ann_file, 'a') as handle:
        handle.write(f'gone/only_video.mp4 {EMPTY_CLASS}\n')
    broken['missing_only_video'] = osp.join(videos.videos('train'), 'gone', 'only_video.mp4')
    return videos, ann_file, broken


@pytest.fixture(scope='module')
def scan(data, tmp_path_factory):
    """(out dir, stdout, stderr) of a two-worker scan through the tool's command line."""
    videos, ann_file, _ = data
    out_dir = tmp_path_factory.mktemp('check')
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        returncode = check_videos.main([ann_file, videos.videos('train'), '--workers', '2',
                                        '--out-dir', str(out_dir)])
    assert returncode == 0, stderr.getvalue()[-4000:]
    return out_dir, stdout.getvalue(), stderr.getvalue()


def read(path):
    with open(path) as handle:
        return handle.read().splitlines()


def test_finds_exactly_the_broken_videos_with_reasons(data, scan):
    _, _, broken = data
    out_dir, _, _ = scan
    found = dict(line.split('\t', 1) for line in read(out_dir / 'broken.txt'))
    assert set(found) == set(broken.values())
    assert found[broken['missing']] == 'file not found'
    assert found[broken['empty']] == 'empty file (0 bytes)'
    for kind in ('truncated', 'not_a_video', 'zero_frames'):
        assert found[broken[kind]].startswith('cannot open: '), kind


def test_ok_list_is_the_annotation_without_broken_entries_and_trains_without_replacement(
        data, scan):
    videos, _, _ = data
    out_dir, _, _ = scan
    assert read(out_dir / 'ok_list.txt') == read(videos.train_ann)
    pipeline = Config.fromfile(DEMO_CONFIG).train_pipeline
    dataset = DATASETS.build(dict(type='RobustVideoDataset', ann_file=str(out_dir / 'ok_list.txt'),
                                  data_prefix=dict(video=videos.videos('train')),
                                  pipeline=pipeline))
    for index in range(len(dataset)):
        assert 'replaced_videos' not in dataset[index]['data_samples']


def test_summary_counts_reasons_and_classes_beside_kinetics_sizes(data, scan):
    videos, ann_file, _ = data
    out_dir, stdout, stderr = scan
    labels = {line.split()[1] for line in read(ann_file)}
    readable_labels = {line.split()[1] for line in read(videos.train_ann)}
    summary = read(out_dir / 'summary.txt')
    assert f'{NUM_TRAIN + 6} videos listed, {NUM_TRAIN} readable, 6 broken' in summary[0]
    assert '  cannot open: 3' in summary and '  file not found: 2' in summary
    assert '  empty file (0 bytes): 1' in summary
    assert (f'classes: {len(labels)} listed (Kinetics-400: 400), '
            f'{len(labels - readable_labels)} with no readable video') in summary
    assert f'  class {EMPTY_CLASS}: no readable video of 1' in summary
    assert f'  train (original release): 246245 / {NUM_TRAIN + 6} listed, {NUM_TRAIN} readable' \
        in summary
    assert 'ETA' in stderr and summary[0] in stdout


def test_an_interrupted_scan_resumes_where_it_stopped(data, scan, tmp_path):
    videos, ann_file, broken = data
    out_dir, _, _ = scan
    done = read(out_dir / PROGRESS_NAME)
    # Killed after four videos, in the middle of writing the fifth line.
    with open(tmp_path / PROGRESS_NAME, 'w') as handle:
        handle.write('\n'.join(done[:4]) + '\n' + done[4][:10])
    result = scan_videos(ann_file, videos.videos('train'), str(tmp_path))
    assert result.resumed == 4
    assert set(result.broken) == set(broken.values())
    assert sorted(read(tmp_path / PROGRESS_NAME)) == sorted(done)
    assert read(tmp_path / 'broken.txt') == read(out_dir / 'broken.txt')


def test_bad_input_names_the_file(data, tmp_path, capsys):
    videos, _, _ = data
    assert check_videos.main([str(tmp_path / 'nope.txt'), videos.videos('train')]) == 2
    assert 'check_videos.py: error: annotation file not found:' in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match='annotation file not found: .*nope.txt'):
        scan_videos(str(tmp_path / 'nope.txt'), videos.videos('train'), str(tmp_path))
    bad = tmp_path / 'bad.txt'
    bad.write_text('a/b.mp4 0\njust_a_path.mp4\n')
    with pytest.raises(ValueError, match='bad.txt, line 2: expected "<path> <label>"'):
        scan_videos(str(bad), videos.videos('train'), str(tmp_path))
