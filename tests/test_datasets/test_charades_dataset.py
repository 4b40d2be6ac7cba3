"""CharadesDataset: csv parsing, clip labels from time spans, tolerance of broken videos."""
import csv
import re
import os.path as osp
import shutil

import cv2
import decord
import numpy as np
import pytest
from helpers.charades_data import make_charades_demo

import nlnet.openmmlab  # noqa: F401
from mmaction.registry import DATASETS
from nlnet.datasets import BrokenVideoError
from nlnet.datasets.charades import ActionSpan, active_classes, parse_actions

DEFAULT_SCOPE = 'mmaction'
FPS = 8  # the generator's frame rate; its videos have 40 frames (0 .. 4.875 s)
CLASSES = {f'c{i:03d}': i for i in range(157)}


def test_active_classes_on_hand_made_spans():
    spans = [ActionSpan(0, 0.0, 2.0),   # ends exactly on frame 16's time
             ActionSpan(1, 2.9, 4.0),   # starts after frame 23 (2.875 s)
             ActionSpan(2, 1.0, 3.0),   # covers the whole clip
             ActionSpan(3, 2.1, 2.2),   # between frames 16 and 18: holds frame 17 only
             ActionSpan(4, 2.01, 2.12)]  # between frames 16 and 17: no frame shows it
    assert active_classes(spans, 16, 23, FPS) == [0, 2, 3]
    assert active_classes(spans, 17, 23, FPS) == [2, 3]
    assert active_classes(spans, 23, 23, FPS) == [2]
    # Action 1 starts at frame 23.2, so on frame 24, where action 2 ends.
    assert active_classes(spans, 24, 31, FPS) == [1, 2]
    assert active_classes(spans, 25, 31, FPS) == [1]
    assert active_classes(spans, 33, 39, FPS) == []   # after every action
    # Float rounding: 0.35 s x 20 fps is 6.999..., yet frame 7 is at the end.
    assert active_classes([ActionSpan(5, 0.35, 0.35)], 7, 7, 20) == [5]
    with pytest.raises(ValueError, match='fps must be positive'):
        active_classes(spans, 0, 1, 0)


def test_parse_actions_and_its_errors():
    assert parse_actions('c092 11.90 21.20;c147 0.00 12.60', CLASSES, 'f.csv') == [
        ActionSpan(92, 11.9, 21.2), ActionSpan(147, 0.0, 12.6)]
    assert parse_actions('', CLASSES, 'f.csv') == []
    for text, message in [('c999 1 2', "unknown action class 'c999'"),
                          ('c001 1', 'is not "<class> <start> <end>"'),
                          ('c001 a 2', 'non-numeric time'),
                          ('c001 3.00 2.00', '0 <= start <= end')]:
        with pytest.raises(ValueError, match=message) as error:
            parse_actions(text, CLASSES, 'f.csv, line 7')
        assert 'f.csv, line 7' in str(error.value)


@pytest.fixture(scope='module')
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp('charades')
    return make_charades_demo.make_charades_demo(str(root), num_train=3, num_test=2)


def write_csv(path, rows):
    """Charades csv with ``(id, actions)`` rows, the other columns empty."""
    columns = make_charades_demo.CSV_COLUMNS
    with open(path, 'w', newline='') as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for video_id, actions in rows:
            writer.writerow(dict.fromkeys(columns, '') | dict(id=video_id, actions=actions))
    return str(path)


def pipeline(clip_len=8, num_clips=1, test_mode=True):
    return [
        dict(type='DecordInit'),
        dict(type='SampleFrames', clip_len=clip_len, frame_interval=1, num_clips=num_clips,
             test_mode=test_mode),
        dict(type='DecordDecode'),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs', meta_keys=('video_id', 'frame_inds'))
    ]


def build(layout, ann_file, **kwargs):
    kwargs.setdefault('pipeline', pipeline())
    return DATASETS.build(dict(type='CharadesDataset', ann_file=ann_file,
                               class_file=layout['classes'],
                               data_prefix=dict(video=layout['videos']), **kwargs))


def labels_of(sample):
    return np.flatnonzero(sample['data_samples'].gt_label.numpy()).tolist()


def test_training_clip_labels_from_spans_through_decord(layout, tmp_path):
    # The centre clip of 8 of the 40 frames: frames 16..23, 2.0 .. 2.875 s.
    ann = write_csv(tmp_path / 'train.csv', [
        ('TR000', 'c000 0.00 2.00;c001 2.90 4.00;c002 1.00 3.00;c003 2.10 2.20;c004 2.01 2.12'),
        ('TR001', 'c005 0.00 1.00;c006 4.00 4.90'),  # the clip is outside every action
        ('TR002', '')])                              # a video without actions
    spans = build(layout, ann)
    assert len(spans) == 3 and spans.num_classes == 157
    assert spans.metainfo['classes'][:2] == ('c000', 'c001')
    first = spans[0]
    assert first['data_samples'].frame_inds.tolist() == list(range(16, 24))
    assert first['data_samples'].gt_label.shape == (157,)
    assert labels_of(first) == [0, 2, 3]
    assert labels_of(spans[1]) == [] and labels_of(spans[2]) == []

    videos = build(layout, ann, clip_labels='video')
    assert labels_of(videos[0]) == [0, 1, 2, 3, 4] and labels_of(videos[1]) == [5, 6]


def extract_frames(layout, video_ids, frame_root):
    """Charades_v1_rgb layout: ``<id>/<id>-000001.jpg ...`` from the generated videos."""
    for video_id in video_ids:
        reader = decord.VideoReader(osp.join(layout['videos'], f'{video_id}.mp4'))
        frame_dir = frame_root / video_id
        frame_dir.mkdir(parents=True)
        for number, frame in enumerate(reader.get_batch(list(range(len(reader)))).asnumpy(), 1):
            cv2.imwrite(str(frame_dir / f'{video_id}-{number:06d}.jpg'), frame[..., ::-1])
    return str(frame_root)


def test_extracted_frames_get_the_same_clip_labels(layout, tmp_path):
    frame_root = extract_frames(layout, ['TR000', 'TR001'], tmp_path / 'Charades_v1_rgb')
    ann = write_csv(tmp_path / 'train.csv', [
        ('TR000', 'c000 0.00 2.00;c001 2.90 4.00;c002 1.00 3.00;c003 2.10 2.20;c004 2.01 2.12'),
        ('TR001', 'c005 0.00 1.00'), ('GONE', 'c006 0.00 1.00')])
    frames_pipeline = [
        dict(type='SampleFrames', clip_len=8, frame_interval=1, num_clips=1, test_mode=True),
        dict(type='RawFrameDecode'),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs', meta_keys=('video_id', 'frame_inds'))
    ]
    dataset = DATASETS.build(dict(
        type='CharadesDataset', ann_file=ann, class_file=layout['classes'], frame_fps=FPS,
        data_prefix=dict(img=frame_root), pipeline=frames_pipeline))
    first = dataset[0]
    # Files are numbered from 1: the centre clip is files 17..24, frames 16..23 as for videos.
    assert first['data_samples'].frame_inds.tolist() == list(range(17, 25))
    assert first['inputs'].shape == (1, 3, 8, 32, 32)
    assert labels_of(first) == [0, 2, 3] and labels_of(dataset[1]) == []
    testing = DATASETS.build(dict(
        type='CharadesDataset', ann_file=ann, class_file=layout['classes'], test_mode=True,
        data_prefix=dict(img=frame_root), pipeline=frames_pipeline))
    with pytest.raises(BrokenVideoError, match='GONE/GONE-000001.jpg: file not found'):
        testing[2]


def test_random_training_clips_get_the_labels_of_their_frames(layout):
    dataset = build(layout, layout['train'], pipeline=pipeline(test_mode=False))
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        for _ in range(3):
            sample = dataset[index]
            frames = sample['data_samples'].frame_inds
            assert labels_of(sample) == active_classes(info['actions'], frames.min(),
                                                       frames.max(), FPS)


def test_test_videos_carry_all_their_actions(layout):
    dataset = build(layout, layout['test'], pipeline=pipeline(num_clips=10), test_mode=True,
                    clip_labels='span')
    assert dataset.clip_labels == 'video'
    with open(layout['test'], newline='') as handle:
        rows = list(csv.DictReader(handle))
    for index, row in enumerate(rows):
        sample = dataset[index]
        assert sample['data_samples'].video_id == row['id']
        expected = sorted({int(item.split()[0][1:]) for item in row['actions'].split(';')})
        assert labels_of(sample) == expected


def test_broken_videos_are_replaced_in_training_and_named_in_testing(layout, tmp_path):
    videos = tmp_path / 'videos'
    shutil.copytree(layout['videos'], videos)
    with open(videos / 'TR000.mp4', 'rb') as handle:
        content = handle.read()
    with open(videos / 'CUT.mp4', 'wb') as handle:
        handle.write(content[:len(content) // 2])
    ann = write_csv(tmp_path / 'broken.csv', [('CUT', 'c000 0.00 1.00'),
                                              ('GONE', 'c001 0.00 1.00'), ('TR000', 'c002 0 4')])
    layout = dict(layout, videos=str(videos))
    training = build(layout, ann, pipeline=pipeline(test_mode=False))
    replaced = training[0]['data_samples'].replaced_videos
    assert replaced[0]['filename'] == osp.join(videos, 'CUT.mp4')
    with pytest.raises(BrokenVideoError, match='GONE.mp4: file not found'):
        build(layout, ann, test_mode=True)[1]
    # CharadesMAP counts the videos skipped at build time from the metainfo (its dataset_meta).
    skipping = build(layout, ann, test_mode=True, skip_broken=True)
    assert len(skipping) == 1 and skipping.metainfo['num_skipped'] == 2


def test_bad_input_is_named(layout, tmp_path):
    with pytest.raises(ValueError, match="clip_labels must be one of .* got 'clip'"):
        build(layout, layout['train'], clip_labels='clip')
    with pytest.raises(FileNotFoundError, match='class_file .*nowhere.txt'):
        build(dict(layout, classes=str(tmp_path / 'nowhere.txt')), layout['train'])
    with pytest.raises(ValueError, match='frame_fps must be positive, got 0'):
        build(layout, layout['train'], frame_fps=0)
    with pytest.raises(ValueError, match='num_classes is set by CharadesDataset'):
        build(layout, layout['train'], num_classes=10)
    bad = tmp_path / 'bad.csv'
    bad.write_text('id,length\nTR000,5.0\n')
    with pytest.raises(ValueError, match=r"bad.csv: missing column\(s\) \['actions'\]"):
        build(layout, str(bad))
    typo = write_csv(tmp_path / 'typo.csv', [('TR000', 'c000 0 1'), ('TR001', 'c1000 0 1')])
    with pytest.raises(ValueError, match=r"typo.csv, line 3 \(video TR001\): unknown action"):
        build(layout, typo)
    no_sampling = [dict(type='DecordInit'), dict(type='DecordDecode')]
    with pytest.raises(ValueError, match="clip_labels='span' needs SampleFrames"):
        build(layout, layout['train'], pipeline=no_sampling)[0]


BAD_CSV = {
    # A quoted cell with newlines (the release's script column has them): the error names
    # the file's line, not the record count.
    'line after a multi-line record': (
        'id,script,actions\nA1,"Someone\nopens the door.\n",c000 0 1\n  \nA2,,c999 0 1\n',
        r"line 6 \(video A2\): unknown action class 'c999'"),
    'multi-line record': ('id,script,actions\nA1,"one\ntwo",c000 3 1\n',
                          r'lines 2-3 \(video A1\): .* 0 <= start <= end'),
    'truncated row': (','.join(make_charades_demo.CSV_COLUMNS) + '\nZ9Q8W,HR43,Kitchen\n',
                      r'line 2: 3 fields where the header has 11 \(id,subject,'),
    'extra field': ('id,script,actions\nA1,x,c000 0 1,9.5\n',
                    'line 2: 4 fields where the header has 3'),
    'infinite end': ('id,actions\nA1,c000 0 1\nA2,c000 0.00 inf\n',
                     r"line 3 \(video A2\): action 'c000 0.00 inf' has a non-finite time"),
    'empty id': ('id,actions\nA1,c000 0 1\n,c001 0 1\n', 'line 3: empty id'),
    'duplicate id': ('id,actions\nA1,c000 0 1\nA2,\nA1,c001 0 1\n',
                     r'line 4: video A1 is listed twice \(first on line 2\)'),
    'header only': ('id,script,actions\n', ': no videos, only the header'),
    'empty file': ('', r": empty file, expected a header with the columns \['id', 'actions'\]"),
}


@pytest.mark.parametrize('case', BAD_CSV)
def test_csv_errors_name_the_file_and_the_line(layout, tmp_path, case):
    text, message = BAD_CSV[case]
    path = tmp_path / 'bad.csv'
    path.write_text(text)
    with pytest.raises(ValueError, match=f'{re.escape(str(path))}(, )?{message}'):
        build(layout, str(path))


def test_csv_with_a_byte_order_mark_is_read(layout, tmp_path):
    path = tmp_path / 'bom.csv'
    path.write_text('id,script,actions\nTR000,,c003 0 1\n', encoding='utf-8-sig')
    assert path.read_bytes().startswith(b'\xef\xbb\xbfid,')
    dataset = build(layout, str(path))
    info = dataset.get_data_info(0)
    assert info['video_id'] == 'TR000' and info['actions'] == [ActionSpan(3, 0., 1.)]
