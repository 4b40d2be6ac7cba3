"""tools/analysis/visualize_attention.py on a generated demo video and a generated image:
PNG + JSON per block and query, and clear errors for what cannot be drawn."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from helpers.tool_modules import load_tool
from helpers.video_tools import DEMO_CONFIG, ROOT, make_demo

C2D_CONFIG = osp.join(ROOT, 'configs', 'demo', 'c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py')
ADE_CONFIG = osp.join(ROOT, 'configs', 'segmentation', 'nonlocal_net',
                      'nonlocal_r50-d8_4xb4-80k_ade20k-512x512.py')
BLOCK = 'backbone.layer2.0.non_local_block'

tool = load_tool('analysis/visualize_attention.py')


def save_random_checkpoint(cfg, path):
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp('attention_demo')
    make_demo.make_demo_dataset(str(root), 1, 1, seed=0)
    with open(root / 'demo_val_list_videos.txt') as handle:
        video = osp.join(root, 'videos_val', handle.readline().split()[0])
    return dict(video=video,
                nl_ckpt=save_random_checkpoint(Config.fromfile(DEMO_CONFIG), root / 'nl.pth'),
                c2d_ckpt=save_random_checkpoint(Config.fromfile(C2D_CONFIG), root / 'c2d.pth'))


def test_video_default_queries_write_png_and_json(demo, tmp_path):
    written = tool.main([DEMO_CONFIG, demo['nl_ckpt'], demo['video'], '--num-queries', '2',
                         '--topk', '5', '--out-dir', str(tmp_path)])
    assert [osp.basename(p) for p in written] == [
        'backbone_layer2_0_non_local_block_q0.png', 'backbone_layer2_0_non_local_block_q1.png']
    for png in written:
        image = cv2.imread(png)
        assert image is not None and image.shape[1] == 4 * 300  # 4 frames side by side
        with open(png[:-4] + '.json') as handle:
            record = json.load(handle)
        assert record['block'] == BLOCK and record['axes'] == ['t', 'y', 'x']
        assert record['input_size'] == [8, 32, 32] and record['key_grid'] == [8, 4, 4]
        assert record['frame_inds'] == [2, 4, 6, 8, 10, 12, 14, 16]  # centre clip, interval 2
        assert len(record['topk']) == 5 and record['weight_sum'] == pytest.approx(1, abs=1e-5)
        weights = [key['weight'] for key in record['topk']]
        assert weights == sorted(weights, reverse=True)
        assert record['query'][0] in record['frames_drawn']


def test_video_given_query_and_heatmap(demo, tmp_path):
    written = tool.main([DEMO_CONFIG, demo['nl_ckpt'], demo['video'], '--block', BLOCK,
                         '--queries', '7,30,2', '--heatmap', '--num-frames', '8',
                         '--out-dir', str(tmp_path)])
    with open(written[0][:-4] + '.json') as handle:
        record = json.load(handle)
    # (7, 30, 2) lies in feature cell (t, h, w) = (7, 3, 0) of the 8 x 4 x 4 grid.
    assert record['query'] == [7, 30, 2] and record['query_index'] == 7 * 16 + 3 * 4
    assert record['query_box'] == [[7, 8], [24, 32], [0, 8]]
    assert record['frames_drawn'] == list(range(8))
    assert cv2.imread(written[0]).shape[1] == 8 * 300


def test_image_of_a_segmentation_config(tmp_path):
    cfg = Config.fromfile(ADE_CONFIG)
    cfg.model.update(pretrained=None)
    cfg.model.backbone.depth = 18
    cfg.model.decode_head.update(in_channels=512, channels=32)
    cfg.model.auxiliary_head.update(in_channels=256, channels=16)
    cfg.model.data_preprocessor.size = (32, 32)
    resize = next(t for t in cfg.test_dataloader.dataset.pipeline if t['type'] == 'Resize')
    resize.scale = (128, 32)
    config = tmp_path / 'tiny_ade.py'
    cfg.dump(str(config))
    image = tmp_path / 'image.png'
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8))
    written = tool.main([str(config), save_random_checkpoint(cfg, tmp_path / 'seg.pth'),
                         str(image), '--queries', '10,20', '--out-dir', str(tmp_path / 'out')])
    assert [osp.basename(p) for p in written] == ['decode_head_nl_block_q0.png']
    with open(written[0][:-4] + '.json') as handle:
        record = json.load(handle)
    # Resized to keep the ratio within 128 x 32: 32 x 43 (no padding at test time); the
    # head's 1/8 grid is 4 x 6, so (10, 20) is in cell (1, 2), 8 x 43/6 px per cell.
    assert record['axes'] == ['y', 'x'] and record['input_size'] == [32, 43]
    assert record['key_grid'] == [4, 6] and record['query_index'] == 1 * 6 + 2
    assert record['query_box'] == [[8, 16], [pytest.approx(2 * 43 / 6), pytest.approx(21.5)]]
    assert len(record['topk']) == 20


@pytest.mark.parametrize('argv,message', [
    (['--block', 'backbone.layer3'], r'--block backbone.layer3: no such non-local block .*'
     r'its non-local blocks are: backbone.layer2.0.non_local_block'),
    (['--queries', '8,1,1'], r'query \(8.0, 1.0, 1.0\): t=8.0 is outside the input'),
    (['--queries', '3,x,1'], r"--queries '3,x,1': expected comma-separated numbers"),
])
def test_bad_arguments_are_named(demo, tmp_path, argv, message):
    with pytest.raises(ValueError, match=message):
        tool.main([DEMO_CONFIG, demo['nl_ckpt'], demo['video'], '--out-dir', str(tmp_path),
                   *argv])


def test_config_without_non_local_blocks(demo, tmp_path):
    with pytest.raises(ValueError, match=r'c2d_r18.*: the model has no non-local block'):
        tool.main([C2D_CONFIG, demo['c2d_ckpt'], demo['video'], '--out-dir', str(tmp_path)])


def test_checkpoint_that_does_not_fit(demo, tmp_path):
    with pytest.raises(ValueError, match=r"(?s)c2d.pth' does not fit the model of .*nl-c2d.*"
                       r'missing keys.*non_local_block'):
        tool.main([DEMO_CONFIG, demo['c2d_ckpt'], demo['video'], '--out-dir', str(tmp_path)])
    with pytest.raises(ValueError, match=r"checkpoint '.*absent.pth' does not exist"):
        tool.main([DEMO_CONFIG, str(tmp_path / 'absent.pth'), demo['video']])
