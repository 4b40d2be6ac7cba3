"""demo/image_demo.py with a tiny NonLocalNet (ADE20K row) on a drawn image: the mask is
the segmentor's test_step output, the figure holds the mask and a panel per query, and
bad inputs are named."""
import copy

import cv2
import numpy as np
import pytest
import torch
from helpers.demo_inputs import (TINY_SEG_SCALE, save_seeded_checkpoint, write_scene_image,
                                 write_tiny_ade_config)
from helpers.tool_modules import load_tool
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

from nlnet.visualization import non_local_blocks, query_attention
from nlnet.visualization.attention_overlay import GAP, panel_scale

demo = load_tool('../demo/image_demo.py')
HEIGHT, WIDTH = 96, 128


@pytest.fixture(scope='module')
def seg(tmp_path_factory):
    root = tmp_path_factory.mktemp('image_demo')
    config = write_tiny_ade_config(root / 'tiny_ade.py')
    return dict(root=root, config=config, image=write_scene_image(root / 'scene.png', HEIGHT,
                                                                  WIDTH),
                checkpoint=save_seeded_checkpoint(Config.fromfile(config), root / 'seg.pth'))


@torch.no_grad()
def segmentor_test_step_mask(config, checkpoint, image):
    """The segmentor's own test_step on the config's test pipeline (annotations left out)."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    pipeline = [t for t in copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
                if t['type'] != 'LoadAnnotations']
    data = pseudo_collate([Compose(pipeline)(dict(img_path=image))])
    return model.eval().test_step(data)[0].pred_sem_seg.data[0].numpy()


def test_mask_is_the_test_step_output(seg, tmp_path, capsys):
    result = demo.main([seg['image'], seg['config'], seg['checkpoint'], '--out-file',
                        str(tmp_path / 'out.png')])
    segmentation = result['segmentation']
    expected = segmentor_test_step_mask(seg['config'], seg['checkpoint'], seg['image'])
    assert segmentation.mask.shape == (HEIGHT, WIDTH)
    assert np.array_equal(segmentation.mask, expected)
    # Resized to fit within 128 x 64 keeping the ratio: 85 x 64.
    assert segmentation.input_size == (TINY_SEG_SCALE[1], round(WIDTH * 64 / HEIGHT))
    printed = capsys.readouterr().out
    ids, counts = np.unique(expected, return_counts=True)
    largest = result['shares'][0]
    assert largest[1] == counts.max() / expected.size and f'{100 * largest[1]:5.1f} %' in printed

    figure = cv2.imread(str(tmp_path / 'out.png'))
    scale = panel_scale((HEIGHT, WIDTH))
    assert figure.shape[1] == 3 * WIDTH * scale + 2 * GAP  # the mask and two queries
    assert figure.shape[0] > HEIGHT * scale


def test_query_pixels_map_to_the_model_input(seg, tmp_path):
    """--query y,x is in image pixels; its map is the block's weights for the input cell that
    holds it (85 x 64 input, 1/8 feature grid: 8 x 11 cells)."""
    result = demo.main([seg['image'], seg['config'], seg['checkpoint'], '--query', '40,80',
                        '90,5', '--out-file', str(tmp_path / 'q.png')])
    segmentation = result['segmentation']
    (name, first), (_, second) = result['attentions']
    assert name == 'decode_head.nl_block'
    assert first.query == pytest.approx([40 * 64 / 96, 80 * 85 / 128])
    grid = segmentation.block_inputs[name].shape[2:]
    assert tuple(grid) == (8, 11)
    for attention, (y, x) in ((first, (40, 80)), (second, (90, 5))):
        cell = (int(y * 64 / 96 // (64 / 8)), int(x * 85 / 128 // (85 / 11)))
        assert attention.query_index == cell[0] * 11 + cell[1]
    model = demo.apis.load_model(seg['config'], seg['checkpoint'])
    block = non_local_blocks(model)[name]
    expected = query_attention(block, segmentation.block_inputs[name], [first.query_index])[0]
    assert torch.equal(first.weights, expected.float())


def test_sliding_windows_give_the_mask_without_attention(seg, tmp_path, capsys):
    """test_cfg.mode='slide' with 32 x 32 crops at stride 24 on the 64 x 85 input: 3 x 4
    windows (MMSeg's count: (64 - 32 + 23) // 24 + 1 rows), each with its own attention; the
    mask is test_step's, no attention is drawn."""
    cfg = Config.fromfile(seg['config'])
    cfg.model.test_cfg = dict(mode='slide', crop_size=(32, 32), stride=(24, 24))
    config = str(tmp_path / 'tiny_ade_slide.py')
    cfg.dump(config)
    result = demo.main([seg['image'], config, seg['checkpoint'], '--out-file',
                        str(tmp_path / 'slide.png')])
    segmentation = result['segmentation']
    assert segmentation.windows == 3 * 4 and result['attentions'] == []
    assert np.array_equal(segmentation.mask,
                          segmentor_test_step_mask(config, seg['checkpoint'], seg['image']))
    assert "ran on 12 sliding windows of" in capsys.readouterr().out
    scale = panel_scale((HEIGHT, WIDTH))
    assert cv2.imread(str(tmp_path / 'slide.png')).shape[1] == WIDTH * scale  # the mask alone


@pytest.mark.parametrize('case,message', [
    ('missing', r"image '.*absent\.png' does not exist"),
    ('empty', r"image '.*empty\.png' is empty \(0 bytes\)"),
    ('not_image', r"image '.*notes\.png' cannot be read: not an image format OpenCV decodes"),
    ('video_checkpoint', r"(?s)checkpoint '.*video\.pth' does not fit the model of .*tiny_ade"
     r'.*unexpected key'),
    ('query', r'query \(.*\): y=.* is outside the input'),
    ('tta_config', r'tiny_ade_tta\.py: a test-time augmentation config \(SegTTAModel'),
])
def test_bad_input_is_named(seg, tmp_path, case, message):
    image, checkpoint, extra = seg['image'], seg['checkpoint'], []
    if case == 'missing':
        image = str(tmp_path / 'absent.png')
    elif case == 'empty':
        (tmp_path / 'empty.png').write_bytes(b'')
        image = str(tmp_path / 'empty.png')
    elif case == 'not_image':
        (tmp_path / 'notes.png').write_text('not a picture\n')
        image = str(tmp_path / 'notes.png')
    elif case == 'video_checkpoint':
        checkpoint = str(tmp_path / 'video.pth')
        torch.save(dict(state_dict={'cls_head.fc_cls.weight': torch.zeros(4, 128)}), checkpoint)
    elif case == 'tta_config':
        config = tmp_path / 'tiny_ade_tta.py'
        config.write_text(f"_base_ = {seg['config']!r}\n"
                          "model = dict(_delete_=True, type='SegTTAModel', module={{_base_.model}})"
                          "\n")
        with pytest.raises(ValueError, match=message):
            demo.main([image, str(config), checkpoint])
        return
    else:
        extra = ['--query', f'{HEIGHT},3', '--out-file', str(tmp_path / 'q.png')]
    with pytest.raises(ValueError, match=message):
        demo.main([image, seg['config'], checkpoint, *extra])
