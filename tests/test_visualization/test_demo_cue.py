"""The demo's cue-attention share: which queries and keys it takes, on the generator's layout."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from helpers.video_tools import DEMO_CONFIG, make_demo
from nlnet.models.layers import NonLocalBlock
from nlnet.visualization import BlockGeometry, build_model
from nlnet.visualization.demo_cue import (answer_centre, board_clip_frames, cue_attention_share,
                                          cue_keys, read_layout)

LAYOUT = dict(cue_frames=[0, 6], probe_frames=[14, 20], cue_box=[12, 20, 20, 28],
              board_boxes=[[7, 6, 15, 14], [5, 21, 13, 29], [21, 6, 29, 14], [24, 19, 32, 27]])
FRAME_INDS = [2, 4, 6, 8, 10, 12, 14, 16]


def test_generator_layout_is_where_the_squares_are():
    frames, label, layout = make_demo.DemoVideoSpec().render(np.random.default_rng(3))
    top, left, bottom, right = layout['cue_box']
    cue = frames[layout['cue_frames'][0]]
    assert (cue[top:bottom, left:right] == cue[top, left]).all() and cue[top, left].any()
    assert cue.any(-1).sum() == (bottom - top) * (right - left)  # nothing else is drawn
    board = frames[layout['probe_frames'][1] - 1]
    top, left, bottom, right = layout['board_boxes'][label]
    assert (board[top:bottom, left:right] == cue[layout['cue_box'][0], layout['cue_box'][1]]).all()


def test_cue_keys_answer_centre_and_board_frames():
    geometry = BlockGeometry(NonLocalBlock(8, dim=3), (8, 4, 4), (8, 32, 32))
    # The cue (rows 12-19, columns 20-27) overlaps cells h 1-2, w 2-3 of clip frames 0
    # and 1 (video frames 2 and 4 of the cue's 0-5).
    assert cue_keys(LAYOUT, FRAME_INDS, geometry) == [6, 7, 10, 11, 22, 23, 26, 27]
    assert cue_keys(LAYOUT, FRAME_INDS, geometry, whole_frames=True) == list(range(32))
    assert board_clip_frames(LAYOUT, FRAME_INDS) == [6, 7]
    assert answer_centre(LAYOUT, 3) == (27.5, 22.5)
    assert geometry.query_index((7, 27.5, 22.5)) == 7 * 16 + 3 * 4 + 2


def test_share_on_generated_videos(tmp_path):
    make_demo.make_demo_dataset(str(tmp_path), 1, 2, seed=0)
    cfg = Config.fromfile(DEMO_CONFIG)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), tmp_path / 'nl.pth')
    model = build_model(cfg, str(tmp_path / 'nl.pth'))
    result = cue_attention_share(model, cfg, str(tmp_path))

    layouts, labels, size = read_layout(str(tmp_path), 'val')
    assert result['videos'] == 2 and size == 32 and set(labels) == set(layouts)
    geometry = BlockGeometry(NonLocalBlock(8, dim=3), (8, 4, 4), (8, 32, 32))
    for video, figures in result['per_video'].items():
        expected_keys = cue_keys(layouts[video], FRAME_INDS, geometry)
        assert figures['uniform'] == len(expected_keys) / 128
        assert figures['frame_uniform'] == 32 / 128
        assert 0 < figures['share'] < figures['frame_share'] <= 1
    assert result['share'] == pytest.approx(
        sum(v['share'] for v in result['per_video'].values()) / 2)


def test_missing_layout_is_named(tmp_path):
    with pytest.raises(ValueError, match=r'demo_val_layout.json.* does not exist; generate'):
        read_layout(str(tmp_path), 'val')
