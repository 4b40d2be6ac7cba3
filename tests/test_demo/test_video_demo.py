"""demo/video_demo.py on a generated demo video and a real H.264 clip: the printed labels
carry the scores ``tools/test.py --dump`` gives for the same video and views, the overlay
has a frame per clip frame, a raw official Caffe2 pickle works as CHECKPOINT, and each
bad input is named."""
import os.path as osp
import pickle
import re

import cv2
import numpy as np
import pytest
import torch
from helpers.demo_inputs import (C2D_DEMO_CONFIG, save_seeded_checkpoint, write_demo_test_config,
                                 write_video_list)
from helpers.h264_videos import write_h264_clip
from helpers.official_caffe2 import (OFFICIAL_CONFIGS, random_blobs, video_blob_shapes,
                                     with_training_state, write_python2_pickle)
from helpers.official_models import CONFIG_DIR, WIDTH
from helpers.tool_modules import ROOT, load_tool, own_instances
from helpers.video_tools import DEMO_CONFIG, make_demo
from mmengine.config import Config
from PIL import Image

from nlnet.converters import convert_official_video_model
from nlnet.visualization import single_view_pipeline
from nlnet.visualization.attention_overlay import GAP, panel_scale

demo = load_tool('../demo/video_demo.py')
CLIP_LEN = 8  # the demo config's clips: 8 frames, every 2nd
DEMO_FRAME = 32  # its frames are resized to 32 x 32
# '  1. cue_at_top_left  0.2892  (class 0)': rank, name, score, class index.
LINE = re.compile(r'^  (\d)\. (\S+)\s+(\d\.\d{4})  \(class (\d+)\)$', re.MULTILINE)


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    """A generated demo video (MPEG-4 Part 2), a real H.264 clip, and the seeded demo
    NL-C2D checkpoint."""
    root = tmp_path_factory.mktemp('video_demo')
    ann = make_demo.make_demo_dataset(str(root / 'data'), 1, 1, seed=0)
    with open(ann['val']) as handle:
        generated = str(root / 'data' / 'videos_val' / handle.readline().split()[0])
    h264 = write_h264_clip(root / 'h264.mp4', num_frames=48)
    return dict(root=root, generated=generated, h264=h264,
                classes=str(root / 'data' / 'demo_classes.txt'),
                checkpoint=save_seeded_checkpoint(Config.fromfile(DEMO_CONFIG),
                                                  root / 'nl.pth'))


def dumped_scores(root, name, config, checkpoint):
    dump = root / f'{name}.pkl'
    load_tool('test.py').main([config, checkpoint, '--work-dir', str(root / name), '--dump',
                               str(dump), '--cfg-options', *own_instances(name)])
    with open(dump, 'rb') as handle:
        return [(s['filename'], s['pred_score'], s['num_views'])
                for s in pickle.load(handle)['samples']]


@pytest.mark.parametrize('views', [None, 1])
def test_printed_scores_are_the_test_dump(videos, views, capsys):
    """For each video, the demo's scores equal tools/test.py --dump's for the same views (the
    config's 10 clips x 3 crops, or the centre view), and the printed lines show them."""
    root = videos['root']
    ann_file, prefix = write_video_list(root, [videos['generated'], videos['h264']])
    pipeline = None if views is None else single_view_pipeline(Config.fromfile(DEMO_CONFIG))
    config = write_demo_test_config(root / f'views_{views}.py', ann_file, prefix, pipeline)
    dumped = dumped_scores(root, f'views_{views}', config, videos['checkpoint'])
    assert [filename for filename, _, _ in dumped] == [videos['generated'], videos['h264']]
    for filename, scores, num_views in dumped:
        capsys.readouterr()
        argv = [filename, DEMO_CONFIG, videos['checkpoint'], '--label-map', videos['classes']]
        result = demo.main(argv + (['--views', '1'] if views else []))
        assert num_views == result['video'].num_views == (1 if views else 30)
        assert result['scores'].dtype == scores.dtype
        assert np.array_equal(result['scores'], scores)
        printed = LINE.findall(capsys.readouterr().out)
        order = np.argsort(-scores, kind='stable')
        names = open(videos['classes']).read().split()
        assert [(int(rank), name, float(score), int(index))
                for rank, name, score, index in printed] == [
            (rank, names[index], round(float(scores[index]), 4), index)
            for rank, index in enumerate(order, 1)]


@pytest.mark.parametrize('suffix', ['.gif', '.mp4', '.png'])
def test_overlay_has_a_frame_per_clip_frame(videos, tmp_path, suffix):
    """An animation has one frame per clip frame, two query panels of the enlarged crop side
    by side; a sheet has every clip frame in a row per query."""
    out_file = str(tmp_path / f'overlay{suffix}')
    result = demo.main([videos['h264'], DEMO_CONFIG, videos['checkpoint'], '--views', '1',
                        '--out-file', out_file])
    panel = DEMO_FRAME * panel_scale((DEMO_FRAME, DEMO_FRAME))
    width, height = result['size']
    assert len(result['attentions']) == 2
    if suffix == '.gif':
        with Image.open(out_file) as image:
            assert image.n_frames == CLIP_LEN and image.size == (width, height)
    elif suffix == '.mp4':
        capture = cv2.VideoCapture(out_file)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        assert len(frames) == CLIP_LEN and frames[0].shape == (height, width, 3)
    else:
        assert result['images'] == 1
        image = cv2.imread(out_file)
        assert image.shape[:2] == (height, width)
    if suffix == '.png':
        sheet_panel = DEMO_FRAME * panel_scale((DEMO_FRAME, DEMO_FRAME), 128)
        assert width == CLIP_LEN * sheet_panel + (CLIP_LEN - 1) * GAP
        assert height > 2 * sheet_panel  # a row per query, under the labels
    else:
        assert width == 2 * panel + GAP and height > panel


def test_model_without_non_local_block_draws_the_labelled_clip(videos, tmp_path, capsys):
    """The C2D twin has no block: the overlay is the clip with its labels, and a note says so."""
    checkpoint = save_seeded_checkpoint(Config.fromfile(C2D_DEMO_CONFIG), tmp_path / 'c2d.pth')
    result = demo.main([videos['h264'], C2D_DEMO_CONFIG, checkpoint, '--views', '1',
                        '--out-file', str(tmp_path / 'c2d.gif')])
    assert result['attentions'] == [] and result['images'] == CLIP_LEN
    assert result['size'][0] == DEMO_FRAME * panel_scale((DEMO_FRAME, DEMO_FRAME))
    assert 'has no non-local block: the clip is drawn with its labels only' in \
        capsys.readouterr().out


def test_given_queries_and_the_attention_drawn(videos, tmp_path):
    """--queries picks the panels' queries; each map is the block's weights for that query."""
    result = demo.main([videos['generated'], DEMO_CONFIG, videos['checkpoint'], '--views', '1',
                        '--queries', '7,30,2', '0,0,31', '--out-file',
                        str(tmp_path / 'q.gif')])
    maps = [attention for _, attention in result['attentions']]
    assert [m.query for m in maps] == [[7, 30, 2], [0, 0, 31]]
    # The 8 x 4 x 4 query grid of the res3 block over the 8 x 32 x 32 clip.
    assert [m.query_index for m in maps] == [7 * 16 + 3 * 4 + 0, 0 * 16 + 0 * 4 + 3]
    for attention in maps:
        assert attention.heat.shape == (CLIP_LEN, DEMO_FRAME, DEMO_FRAME)
        assert float(attention.weights.sum()) == pytest.approx(1, abs=1e-5)


def test_short_video_is_looped_with_a_note(videos, tmp_path, capsys):
    """A 5-frame clip is shorter than one 8 x 2 clip: the pipeline loops it, the demo says so."""
    short = write_h264_clip(tmp_path / 'short.mp4', num_frames=5)
    result = demo.main([short, DEMO_CONFIG, videos['checkpoint'], '--views', '1'])
    assert result['video'].looped and result['video'].frame_inds == [0, 2, 4, 1, 3, 0, 2, 4]
    assert f'note: {short} has 5 frames, fewer than one clip spans (8 frames at interval 2: 15)' \
        in capsys.readouterr().out


def test_charades_config_prints_per_class_probabilities(videos, tmp_path, capsys):
    """The Charades demo config's multi-label head: independent sigmoid scores, named by the
    shipped 157 Charades classes."""
    config = osp.join(ROOT, 'configs', 'demo',
                      'nl-c2d_r18-tiny_1xb4-8x2x1-10e_charades-demo-rgb.py')
    checkpoint = save_seeded_checkpoint(Config.fromfile(config), tmp_path / 'charades.pth')
    result = demo.main([videos['h264'], config, checkpoint, '--views', '1'])
    printed = capsys.readouterr().out
    assert 'top 5 labels, per-class probabilities (sigmoid, multi-label):' in printed
    assert result['scores'].shape == (157, ) and result['scores'].sum() > 1
    with open(osp.join(ROOT, 'nlnet', 'apis', 'label_maps', 'Charades_v1_classes.txt')) as handle:
        charades = handle.read().splitlines()
    top = result['labels'][0]
    assert top.name == charades[top.index] and f'1. {top.name}' in printed


def test_raw_official_caffe2_pickle_as_checkpoint(tmp_path, capsys):
    """A raw official NL-I3D pickle (random weights, official layout, 400 classes) is converted
    on the fly: the demo's scores equal those of its converted .pth, named by the shipped
    Kinetics-400 label map."""
    name = 'nl-i3d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py'
    config = tmp_path / 'tiny_official.py'
    config.write_text(f'_base_ = [{osp.join(CONFIG_DIR, name)!r}]\n'
                      f'model = dict(backbone=dict(base_channels={WIDTH}), '
                      f'cls_head=dict(in_channels={32 * WIDTH}))\n')
    blobs = random_blobs(video_blob_shapes(OFFICIAL_CONFIGS[name], WIDTH, 400))
    write_python2_pickle(tmp_path / 'official.pkl', dict(blobs=with_training_state(blobs)), 2)
    model, _ = convert_official_video_model(str(tmp_path / 'official.pkl'), str(config))
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'converted.pth')
    video = write_h264_clip(tmp_path / 'clip.mp4', num_frames=32, width=96, height=72)
    raw = demo.main([video, str(config), str(tmp_path / 'official.pkl'), '--views', '1'])
    printed = capsys.readouterr().out
    converted = demo.main([video, str(config), str(tmp_path / 'converted.pth'), '--views', '1'])
    assert raw['scores'].shape == (400, )
    assert np.array_equal(raw['scores'], converted['scores'])
    with open(osp.join(ROOT, 'nlnet', 'apis', 'label_maps', 'label_map_k400.txt')) as handle:
        kinetics = handle.read().splitlines()
    assert [label.name for label in raw['labels']] == [
        kinetics[index] for index in np.argsort(-raw['scores'], kind='stable')[:5]]
    assert f'1. {raw["labels"][0].name}' in printed


@pytest.fixture(scope='module')
def bad_inputs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp('bad_inputs')
    (tmp_path / 'empty.mp4').write_bytes(b'')
    (tmp_path / 'notes.mp4').write_text('these are notes, not a video\n' * 20)
    (tmp_path / 'three.txt').write_text('a\nb\nc\n')
    (tmp_path / 'garbage.pth').write_bytes(b'PK\x03\x04 not a zip archive, not a checkpoint')
    c2d = save_seeded_checkpoint(Config.fromfile(C2D_DEMO_CONFIG), tmp_path / 'c2d.pth')
    wide = Config.fromfile(DEMO_CONFIG)
    wide.model.cls_head.num_classes = 7
    return dict(tmp=tmp_path, c2d=c2d,
                wide=save_seeded_checkpoint(wide, tmp_path / 'seven_classes.pth'))


@pytest.mark.parametrize('case,message', [
    ('missing', r"video '.*absent\.mp4' does not exist"),
    ('empty', r"video '.*empty\.mp4' is empty \(0 bytes\)"),
    ('not_video', r"video '.*notes\.mp4' cannot be read \(DecordInit: "),
    ('c2d_checkpoint', r"(?s)checkpoint '.*c2d\.pth' does not fit the model of .*nl-c2d_r18.*"
     r'missing keys.*non_local_block'),
    ('shape_mismatch', r"(?s)checkpoint '.*seven_classes\.pth' does not fit the model of .*"
     r'size mismatch for cls_head\.fc_cls\.weight.*\[7, 128\].*\[4, 128\]'),
    ('absent_checkpoint', r"checkpoint '.*absent\.pth' does not exist"),
    ('corrupt_checkpoint', r"checkpoint '.*garbage\.pth' cannot be read: checkpoint .*garbage\.pth "
     r'is truncated or corrupt'),
    ('label_map', r"label map '.*three\.txt' names 3 classes, but the model of .* has 4"),
    ('out_file', r"--out-file '.*out\.avi': expected a \.mp4 or \.gif"),
    ('query', r'query \(8\.0, 1\.0, 1\.0\): t=8\.0 is outside the input'),
    ('views', r"--views 3: the demo runs the config's test views"),
])
def test_bad_input_is_named(videos, bad_inputs, case, message):
    tmp = bad_inputs['tmp']
    video, checkpoint, extra = videos['generated'], videos['checkpoint'], []
    if case in ('missing', 'empty'):
        video = str(tmp / ('absent.mp4' if case == 'missing' else 'empty.mp4'))
    elif case == 'not_video':
        video = str(tmp / 'notes.mp4')
    elif case == 'c2d_checkpoint':
        checkpoint = bad_inputs['c2d']
    elif case == 'shape_mismatch':
        checkpoint = bad_inputs['wide']
    elif case == 'absent_checkpoint':
        checkpoint = str(tmp / 'absent.pth')
    elif case == 'corrupt_checkpoint':
        checkpoint = str(tmp / 'garbage.pth')
    elif case == 'label_map':
        extra = ['--label-map', str(tmp / 'three.txt')]
    elif case == 'out_file':
        extra = ['--out-file', str(tmp / 'out.avi')]
    elif case == 'query':
        extra = ['--views', '1', '--queries', '8,1,1', '--out-file', str(tmp / 'q.gif')]
    else:
        extra = ['--views', '3']
    with pytest.raises(ValueError, match=message):
        demo.main([video, DEMO_CONFIG, checkpoint, *extra])
