"""The explorer's sheet for blocks whose key grid is coarser in time than the clip, and for
long clips: each frame's share of the attention, and the sheet's layout."""
import numpy as np
import pytest
import torch

from nlnet.apps.attention_sheet import draw_attention_sheet, frame_shares, sheet_layout
from nlnet.ops import NonLocalBlock
from nlnet.visualization import BlockGeometry


def test_a_key_slice_is_shared_evenly_by_the_frames_it_covers():
    # 8 clip frames on a 4-step grid, keys max-pooled 2 x 2 x 2: each key slice covers 4 frames.
    block = NonLocalBlock(8, dim=3, sub_sample=True, pool_kernel=(2, 2, 2))
    geometry = BlockGeometry(block, (4, 4, 4), (8, 32, 32))
    assert geometry.key_grid == (2, 2, 2)
    weights = torch.arange(1., 9.) / 36  # slice 0 holds (1+2+3+4)/36, slice 1 (5+...+8)/36
    shares = frame_shares(weights, geometry)
    assert shares == pytest.approx([10 / 36 / 4] * 4 + [26 / 36 / 4] * 4)
    assert sum(shares) == pytest.approx(1)


def test_a_long_clip_of_large_frames_is_shrunk_eight_a_row():
    scale, columns = sheet_layout((256, 256), 32)
    assert (scale, columns) == (112 / 256, 8)
    assert sheet_layout((32, 32), 8) == (5, 4)  # the demo: 32 px frames enlarged 5 times
    frames = np.zeros((32, 256, 256, 3), np.uint8)
    heat = np.random.default_rng(0).random((32, 256, 256)).astype(np.float32)
    keys = [dict(box=[[8, 16], [0, 32], [32, 64]])]
    sheet = draw_attention_sheet(frames, heat, [3, 10, 10], keys, [1 / 32] * 32, scale, columns)
    # 4 rows of 8 panels, each a title strip (18 px), the frame, 3 px, its heat map; 6 px gaps.
    assert sheet.shape == (4 * (18 + 112 + 3 + 112) + 3 * 6, 8 * 112 + 7 * 6, 3)
