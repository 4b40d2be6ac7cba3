"""NonLocalNet through the shared tools on generated Cityscapes, ADE20K and VOC12aug layouts.

The seed table's R-50-D8 row configs are shrunk for a CPU (ResNet-18-D8, a narrow
head, every pipeline scale and crop divided by 16, a few iterations) and otherwise
run as they are: the datasets, pipelines, EncoderDecoder, NonLocalHead, auxiliary
FCN head, IoUMetric and SegVisualizationHook are the configs' own.

One family, ADE20K (the one whose labels are shifted by ``reduce_zero_label``), trains
and tests end to end through tools/train.py and tools/test.py, run in this process;
its checkpoint is also tested through the row's ms+flip config. Cityscapes and VOC12aug
are checked at dataset, pipeline and model level: their tiny configs read the generated
layout, and a training step and a scored test step run on their batches.
"""
import io
import os
import os.path as osp
import re
from contextlib import redirect_stdout
from types import SimpleNamespace

import cv2
import mmengine
import numpy as np
import pytest
import torch
from helpers.tool_modules import load_tool, own_instances
from helpers.video_tools import run_log
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from PIL import Image

import nlnet.openmmlab  # noqa: F401
from mmseg.registry import DATASETS, METRICS, MODELS

DEFAULT_SCOPE = 'mmseg'
ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG_DIR = osp.join(ROOT, 'configs', 'segmentation', 'nonlocal_net')
NUM_TRAIN, NUM_VAL = 4, 2
MAX_ITERS = 4
SHRINK = 16
IGNORE_INDEX = 255
# dataset -> (seed-table row, classes, folder of the val images, training sets in the row)
ROWS = {
    'cityscapes': ('nonlocal_r50-d8_4xb2-40k_cityscapes-512x1024.py', 19, 'leftImg8bit/val', 1),
    'ade20k': ('nonlocal_r50-d8_4xb4-80k_ade20k-512x512.py', 150, 'images/validation', 1),
    # VOC12aug trains on train.txt (SegmentationClass) + aug.txt (SegmentationClassAug).
    'voc': ('nonlocal_r50-d8_4xb4-20k_voc12aug-512x512.py', 21, 'JPEGImages', 2),
}

make_seg_demo = load_tool('data/make_seg_demo.py')
train_tool = load_tool('train.py')
test_tool = load_tool('test.py')


@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    """{dataset: data_root} as the generator's command line prints them."""
    out = tmp_path_factory.mktemp('seg_demo')
    printed = io.StringIO()
    with redirect_stdout(printed):
        make_seg_demo.main(['--out-dir', str(out), '--num-train', str(NUM_TRAIN),
                            '--num-val', str(NUM_VAL)])
    return dict(re.findall(r'^(\w+): data_root=(.+)$', printed.getvalue(), re.M))


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


def logged(name, log):
    """The last value of metric ``name`` in a run's log."""
    found = re.findall(rf'\b{name}: (\d+\.\d+)', log)
    assert found, f'{name} missing from the log'
    return float(found[-1])


def label_file(path, reduce_zero_label):
    """A generated label map as the dataset defines it: ADE20K's 0 ("other") is ignored and
    its classes 1-150 are 0-149."""
    label = np.array(Image.open(path), np.int64)  # VOC's palette PNGs: the indices
    if reduce_zero_label:
        label = np.where(label == 0, IGNORE_INDEX, label - 1)
    return label


def mean_iou(predictions, labels, num_classes):
    """mIoU in percent over all images, from its definition: per class, the pixels labelled
    and predicted that class over those labelled or predicted it (ignored pixels left out),
    averaged over the classes that occur in either; rounded as IoUMetric reports it."""
    intersect, union = np.zeros(num_classes), np.zeros(num_classes)
    for pred, label in zip(predictions, labels):
        assert pred.shape == label.shape
        valid = label != IGNORE_INDEX
        for cls in range(num_classes):
            predicted, labelled = (pred == cls) & valid, (label == cls) & valid
            intersect[cls] += (predicted & labelled).sum()
            union[cls] += (predicted | labelled).sum()
    present = union > 0
    return round(float((intersect[present] / union[present]).mean()) * 100, 2)


def dumped_iou(samples, num_classes, reduce_zero_label):
    """mIoU of the dumped predictions against the label files on disk."""
    return mean_iou([s['pred_sem_seg']['data'][0] for s in samples],
                    [label_file(s['seg_map_path'], reduce_zero_label) for s in samples],
                    num_classes)


def overlay(image, seg, palette, alpha=0.8):
    """``image`` (H, W, 3 RGB) blended with the palette colours of ``seg`` (H, W)."""
    colours = np.zeros((IGNORE_INDEX + 1, 3))
    colours[:len(palette)] = palette
    return (image * (1 - alpha) + colours[seg] * alpha).astype(np.uint8)


@pytest.fixture(scope='module')
def ade_run(tmp_path_factory, data_roots):
    """tools/train.py on the tiny ADE20K row, then tools/test.py --dump --show-dir of its
    final checkpoint, both in this process."""
    root = tmp_path_factory.mktemp('ade20k')
    config = tiny_config(root, 'ade20k', data_roots['ade20k'])
    train_tool.main([config, '--work-dir', str(root / 'train'), '--seed', '0',
                     '--cfg-options', *own_instances('train')])
    checkpoint = root / 'train' / f'iter_{MAX_ITERS}.pth'
    dump, show_dir = root / 'results.pkl', root / 'show'
    test_tool.main([config, str(checkpoint), '--work-dir', str(root / 'test'), '--dump',
                    str(dump), '--show-dir', str(show_dir), '--cfg-options',
                    *own_instances('test')])
    return SimpleNamespace(root=root, config=config, checkpoint=checkpoint,
                           train_log=run_log(root / 'train'), test_log=run_log(root / 'test'),
                           results=mmengine.load(str(dump)), show_dir=show_dir)


def test_training_logs_each_step_and_validates_what_testing_scores(ade_run):
    losses = [float(v) for v in re.findall(r'decode\.loss_ce: (\d+\.\d+)', ade_run.train_log)]
    assert len(losses) == MAX_ITERS and all(np.isfinite(losses))
    assert ade_run.checkpoint.is_file()
    # Validation after the last iteration scores the weights of the final checkpoint on the
    # images testing reads: the same mIoU.
    assert logged('mIoU', ade_run.train_log) == logged('mIoU', ade_run.test_log)


def test_test_miou_is_the_iou_of_the_dumped_predictions_on_the_label_files(ade_run):
    samples = ade_run.results['samples']
    assert len(samples) == NUM_VAL
    for sample in samples:
        assert sample['pred_sem_seg']['data'].shape == (1, *sample['ori_shape'])
        assert f'/{ROWS["ade20k"][2]}/' in sample['img_path']
    printed = logged('mIoU', ade_run.test_log)
    # IoUMetric rounds to 2 decimals in float32.
    assert ade_run.results['metrics']['mIoU'] == pytest.approx(printed, abs=1e-4)
    assert dumped_iou(samples, ROWS['ade20k'][1], reduce_zero_label=True) == printed


def test_show_dir_draws_ground_truth_and_prediction_in_the_palette(ade_run):
    samples = ade_run.results['samples']
    dataset_type = Config.fromfile(ade_run.config).test_dataloader.dataset.type
    palette = np.array(DATASETS.get(dataset_type).METAINFO['palette'])
    drawn = {f: osp.join(d, f) for d, _, files in os.walk(ade_run.show_dir) for f in files
             if f.endswith('.png')}
    assert len(drawn) == NUM_VAL
    # Each drawing is ground truth | prediction, both in the dataset's palette over the image.
    for sample in samples:
        name = osp.basename(sample['img_path'])
        (path, ) = [p for f, p in drawn.items() if f.startswith(f'test_{name}')]
        image = cv2.cvtColor(cv2.imread(sample['img_path']), cv2.COLOR_BGR2RGB)
        picture = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        assert picture.shape == (height, 2 * width, 3)
        halves = ((picture[:, :width], 'gt_sem_seg'), (picture[:, width:], 'pred_sem_seg'))
        for half, key in halves:
            expected = overlay(image, sample[key]['data'][0], palette)
            # Class-name captions cover a few pixels; the rest is the exact blend.
            same = (np.abs(half.astype(int) - expected).max(-1) <= 1).mean()
            assert same > 0.9, f'{path} {key}: {same:.2f} of the pixels match the palette'


def test_ms_flip_config_tests_the_row_checkpoint_as_it_is(ade_run):
    """The *_ms-flip.py configs take the row's checkpoints (MMSeg's, or ours) as they are."""
    row, num_classes, _, _ = ROWS['ade20k']
    # The row's own ms-flip config, on top of the tiny row config instead of the full one.
    with open(osp.join(CONFIG_DIR, row.replace('.py', '_ms-flip.py'))) as f:
        text = f.read()
    base = f"_base_ = './{row}'"
    assert text.count(base) == 1
    ms_flip = ade_run.root / 'tiny_ade20k_ms-flip.py'
    ms_flip.write_text(text.replace(base, f'_base_ = {ade_run.config!r}'))

    dump = ade_run.root / 'ms_flip.pkl'
    test_tool.main([str(ms_flip), str(ade_run.checkpoint), '--work-dir',
                    str(ade_run.root / 'test_ms_flip'), '--dump', str(dump), '--cfg-options',
                    *own_instances('test_ms_flip')])
    samples = mmengine.load(str(dump))['samples']
    assert len(samples) == NUM_VAL
    assert dumped_iou(samples, num_classes, reduce_zero_label=True) == \
        logged('mIoU', run_log(ade_run.root / 'test_ms_flip'))


@pytest.mark.parametrize('dataset', ['cityscapes', 'voc'])
def test_row_config_reads_the_layout_and_trains_and_scores_a_batch(tmp_path, data_roots, dataset):
    """The tiny row config's datasets read the generated layout through the row's pipelines;
    its model takes a training step on a training batch and IoUMetric scores its predictions
    on the validation images as the IoU against the label files."""
    _, num_classes, val_images, train_sets = ROWS[dataset]
    cfg = Config.fromfile(tiny_config(tmp_path, dataset, data_roots[dataset]))
    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    val_set = DATASETS.build(cfg.test_dataloader.dataset)
    assert len(train_set) == train_sets * NUM_TRAIN and len(val_set) == NUM_VAL
    assert len(DATASETS.get(cfg.test_dataloader.dataset.type).METAINFO['palette']) == num_classes

    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    crop = cfg.crop_size
    batch = pseudo_collate([train_set[i] for i in range(2)])
    for inputs, sample in zip(batch['inputs'], batch['data_samples']):
        # Random scales below the crop leave smaller images (the preprocessor pads them).
        assert inputs.shape[1:] == sample.gt_sem_seg.data.shape[1:]
        assert all(size <= limit for size, limit in zip(inputs.shape[1:], crop))
        values = set(sample.gt_sem_seg.data.unique().tolist()) - {IGNORE_INDEX}
        assert values and max(values) < num_classes
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    losses = model.train_step(batch, optim_wrapper)
    assert torch.isfinite(losses['decode.loss_ce']) and torch.isfinite(losses['aux.loss_ce'])

    model.eval()
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = val_set.metainfo
    predictions, labels = [], []
    with torch.no_grad():
        for index in range(NUM_VAL):
            packed = val_set[index]
            assert f'/{val_images}/' in packed['data_samples'].img_path
            label = label_file(packed['data_samples'].seg_map_path, reduce_zero_label=False)
            np.testing.assert_array_equal(packed['data_samples'].gt_sem_seg.data[0].numpy(),
                                          label)
            (output, ) = model.test_step(pseudo_collate([packed]))
            assert output.pred_sem_seg.data.shape == (1, *label.shape)
            metric.process({}, [output.to_dict()])
            predictions.append(output.pred_sem_seg.data[0].numpy())
            labels.append(label)
    assert metric.evaluate(NUM_VAL)['mIoU'] == pytest.approx(
        mean_iou(predictions, labels, num_classes), abs=1e-4)
