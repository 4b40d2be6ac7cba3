"""ClipHueRotation keeps the colour relations that the demo labels are made of."""
import numpy as np
import pytest

from nlnet.datasets import ClipHueRotation

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.uint8)


def clip_frames(num_frames):
    """(num_frames) RGB frames of shape (2, 4, 3): row 0 is COLOURS, row 1 repeats COLOURS[0]."""
    frame = np.stack([COLOURS, np.repeat(COLOURS[:1], len(COLOURS), axis=0)])
    return [frame.copy() for _ in range(num_frames)]


def test_one_rotation_per_clip_keeps_equal_colours_equal_and_distinct_ones_distinct():
    np.random.seed(0)
    results = ClipHueRotation(max_degrees=180)(dict(imgs=clip_frames(6), num_clips=2))
    imgs = results['imgs']
    assert len(imgs) == 6 and all(img.shape == (2, 4, 3) and img.dtype == np.uint8 for img in imgs)
    for clip in (imgs[:3], imgs[3:]):
        assert all(np.array_equal(clip[0], frame) for frame in clip[1:])
        first = clip[0]
        assert (first[1] == first[0, 0]).all()
        assert len({tuple(pixel) for pixel in first[0]}) == len(COLOURS)
    assert not np.array_equal(imgs[0], imgs[3])


@pytest.mark.parametrize('max_degrees', [0, -10, 181])
def test_max_degrees_out_of_range_is_rejected(max_degrees):
    with pytest.raises(ValueError, match='max_degrees must be in'):
        ClipHueRotation(max_degrees=max_degrees)
