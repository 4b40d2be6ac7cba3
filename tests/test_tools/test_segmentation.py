"""NonLocalNet through the shared tools on generated Cityscapes, ADE20K and VOC12aug layouts.

The seed table's R-50-D8 row configs are shrunk for a CPU (ResNet-18-D8, a narrow
head, every pipeline scale and crop divided by 16, a few iterations) and otherwise
run as they are: the datasets, pipelines, EncoderDecoder, NonLocalHead, auxiliary
FCN head, IoUMetric and SegVisualizationHook are the configs' own.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import cv2
import mmengine
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import save_checkpoint

import nlnet  # noqa: F401
from mmseg.registry import DATASETS, MODELS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG_DIR = osp.join(ROOT, 'configs', 'segmentation', 'nonlocal_net')
NUM_TRAIN, NUM_VAL = 4, 2
MAX_ITERS = 4
SHRINK = 16
IGNORE_INDEX = 255
# dataset -> (seed-table row, classes, folder of the val images)
ROWS = {
    'cityscapes': ('nonlocal_r50-d8_4xb2-40k_cityscapes-512x1024.py', 19, 'leftImg8bit/val'),
    'ade20k': ('nonlocal_r50-d8_4xb4-80k_ade20k-512x512.py', 150, 'images/validation'),
    'voc': ('nonlocal_r50-d8_4xb4-20k_voc12aug-512x512.py', 21, 'JPEGImages'),
}


def run(*args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    out = tmp_path_factory.mktemp('seg_demo')
    output = run('tools/data/make_seg_demo.py', '--out-dir', str(out), '--num-train',
                 str(NUM_TRAIN), '--num-val', str(NUM_VAL))
    return dict(re.findall(r'^(\w+): data_root=(.+)$', output, re.M))


def _shrink_pipeline(pipeline):
    for transform in pipeline:
        for key in ('scale', 'crop_size', 'size'):
            if key in transform:
                transform[key] = tuple(size // SHRINK for size in transform[key])


def _datasets(dataset_cfg):
    """The leaf dataset configs of a (possibly concatenated) dataset config."""
    if dataset_cfg.get('type') == 'ConcatDataset':
        return [leaf for child in dataset_cfg['datasets'] for leaf in _datasets(child)]
    return [dataset_cfg]


def tiny_config(tmp_path, dataset, data_root):
    """The dataset's R-50-D8 row config on ``data_root``, shrunk for a CPU, as a file."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, ROWS[dataset][0]))
    cfg.crop_size = tuple(size // SHRINK for size in cfg.crop_size)
    cfg.data_preprocessor.size = cfg.crop_size
    model = cfg.model
    model.pretrained = None
    model.data_preprocessor.size = cfg.crop_size
    model.backbone.depth = 18
    model.decode_head.update(in_channels=512, channels=32)
    model.auxiliary_head.update(in_channels=256, channels=16)
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.update(batch_size=2 if loader is cfg.train_dataloader else 1, num_workers=0,
                      persistent_workers=False)
        for leaf in _datasets(loader.dataset):
            leaf.data_root = data_root
            _shrink_pipeline(leaf.pipeline)
    cfg.train_cfg.update(max_iters=MAX_ITERS, val_interval=MAX_ITERS)
    cfg.param_scheduler[0].end = MAX_ITERS
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = MAX_ITERS
    path = tmp_path / f'tiny_{dataset}.py'
    cfg.dump(str(path))
    return str(path)


def logged(name, output):
    """The last value of metric ``name`` in a tool's log."""
    found = re.findall(rf'\b{name}: (\d+\.\d+)', output)
    assert found, f'{name} missing from the output'
    return float(found[-1])


def mean_iou(samples, num_classes):
    """mIoU in percent over all samples, as MMSeg's IoUMetric computes it."""
    intersect = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for sample in samples:
        pred = sample['pred_sem_seg']['data'].squeeze(0)
        label = sample['gt_sem_seg']['data'].squeeze(0)
        assert pred.shape == label.shape == tuple(sample['ori_shape'])
        valid = label != IGNORE_INDEX
        pred, label = pred[valid], label[valid]
        hit = np.bincount(pred[pred == label], minlength=num_classes)
        intersect += hit
        union += (np.bincount(pred, minlength=num_classes)
                  + np.bincount(label, minlength=num_classes) - hit)
    with np.errstate(invalid='ignore'):
        return round(float(np.nanmean(intersect / union)) * 100, 2)


def overlay(image, seg, palette, alpha=0.8):
    """``image`` (H, W, 3 RGB) blended with the palette colours of ``seg`` (H, W)."""
    colours = np.zeros((IGNORE_INDEX + 1, 3))
    colours[:len(palette)] = palette
    return (image * (1 - alpha) + colours[seg] * alpha).astype(np.uint8)


@pytest.mark.parametrize('dataset', sorted(ROWS))
def test_train_then_test_with_dump_and_show_dir(tmp_path, data_roots, dataset):
    """train.py trains and validates; test.py's mIoU, --dump and --show-dir all agree."""
    _, num_classes, val_images = ROWS[dataset]
    config = tiny_config(tmp_path, dataset, data_roots[dataset])
    work_dir = tmp_path / 'work'
    output = run('tools/train.py', config, '--work-dir', str(work_dir), '--seed', '0')
    losses = [float(v) for v in re.findall(r'decode\.loss_ce: (\d+\.\d+)', output)]
    assert len(losses) == MAX_ITERS and all(np.isfinite(losses))
    assert 0 <= logged('mIoU', output) <= 100
    checkpoint = work_dir / f'iter_{MAX_ITERS}.pth'
    assert checkpoint.is_file()

    dump = tmp_path / 'results.pkl'
    show_dir = tmp_path / 'show'
    output = run('tools/test.py', config, str(checkpoint), '--work-dir', str(tmp_path / 'test'),
                 '--dump', str(dump), '--show-dir', str(show_dir))
    printed = logged('mIoU', output)

    results = mmengine.load(str(dump))
    samples = results['samples']
    assert len(samples) == NUM_VAL
    assert results['metrics']['mIoU'] == pytest.approx(printed)
    assert mean_iou(samples, num_classes) == pytest.approx(printed)

    # Each drawing is ground truth | prediction, both in the dataset's palette over the image.
    dataset_type = Config.fromfile(config).test_dataloader.dataset.type
    palette = np.array(DATASETS.get(dataset_type).METAINFO['palette'])
    drawn = {f: osp.join(d, f) for d, _, files in os.walk(show_dir) for f in files
             if f.endswith('.png')}
    assert len(drawn) == NUM_VAL
    for sample in samples:
        name = osp.basename(sample['img_path'])
        (path, ) = [p for f, p in drawn.items() if f.startswith(f'test_{name}')]
        image = cv2.cvtColor(cv2.imread(sample['img_path']), cv2.COLOR_BGR2RGB)
        picture = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        assert picture.shape == (height, 2 * width, 3)
        assert f'/{val_images}/' in sample['img_path']
        halves = ((picture[:, :width], 'gt_sem_seg'), (picture[:, width:], 'pred_sem_seg'))
        for half, key in halves:
            expected = overlay(image, sample[key]['data'][0], palette)
            # Class-name captions cover a few pixels; the rest is the exact blend.
            same = (np.abs(half.astype(int) - expected).max(-1) <= 1).mean()
            assert same > 0.9, f'{path} {key}: {same:.2f} of the pixels match the palette'


def test_ms_flip_config_tests_a_plain_model_checkpoint(tmp_path, data_roots):
    """The *_ms-flip.py configs take the row's checkpoints (MMSeg's, or ours) as they are."""
    row, num_classes, _ = ROWS['ade20k']
    config = tiny_config(tmp_path, 'ade20k', data_roots['ade20k'])
    init_default_scope('mmseg')
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    checkpoint = str(tmp_path / 'plain.pth')
    save_checkpoint(dict(meta=dict(iter=MAX_ITERS), state_dict=model.state_dict()), checkpoint)
    # The row's own ms-flip config, on top of the tiny row config instead of the full one.
    with open(osp.join(CONFIG_DIR, row.replace('.py', '_ms-flip.py'))) as f:
        text = f.read()
    base = f"_base_ = './{row}'"
    assert text.count(base) == 1
    ms_flip = tmp_path / 'tiny_ade20k_ms-flip.py'
    ms_flip.write_text(text.replace(base, f'_base_ = {config!r}'))

    dump = tmp_path / 'results.pkl'
    output = run('tools/test.py', str(ms_flip), checkpoint, '--work-dir', str(tmp_path / 'test'),
                 '--dump', str(dump))
    results = mmengine.load(str(dump))
    assert len(results['samples']) == NUM_VAL
    assert mean_iou(results['samples'], num_classes) == pytest.approx(logged('mIoU', output))
