"""Generate small semantic-segmentation datasets in the Cityscapes, ADE20K and VOC on-disk layouts.

Each image is a background region with a few filled rectangles and discs, every
region one class, painted in the dataset's palette colour for that class plus
Gaussian noise, so that a tiny network can learn the classes from colour. The
label maps are the regions' class indices. The layouts are the ones MMSeg's
``CityscapesDataset``, ``ADE20KDataset`` and ``PascalVOCDataset`` read (see
``data/segmentation.md``), so the real configs run on them once ``data_root``
points here::

    cityscapes/leftImg8bit/{train,val}/<city>/<city>_000000_0000NN_leftImg8bit.png
    cityscapes/gtFine/{train,val}/<city>/<city>_000000_0000NN_gtFine_labelTrainIds.png
        train ids 0-18, 255 = ignore
    ade/ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_000000NN.jpg
    ade/ADEChallengeData2016/annotations/{training,validation}/ADE_{train,val}_000000NN.png
        0 = "other" (ignored through reduce_zero_label), 1-150 = classes
    VOCdevkit/VOC2012/JPEGImages/2007_0000NN.jpg
    VOCdevkit/VOC2012/SegmentationClass/2007_0000NN.png     (palette PNG, train + val)
    VOCdevkit/VOC2012/SegmentationClassAug/2007_0000NN.png  (grey-level PNG, train)
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,aug}.txt
        0 = background, 1-20 = classes, 255 = object boundary (ignored)

    python tools/data/make_seg_demo.py --out-dir data/seg_demo [--datasets cityscapes ade20k voc]

The output is a deterministic function of the arguments.
"""
import argparse
import os
import os.path as osp
import sys

import cv2
import numpy as np
from PIL import Image

DATASETS = ('cityscapes', 'ade20k', 'voc')
# Classes drawn into the images: background first, then the shapes' classes.
CITYSCAPES_CLASSES = (0, 2, 8, 10, 13)  # road; building, vegetation, sky, car
ADE20K_CLASSES = (1, 3, 5, 13, 21)  # wall; floor, ceiling, person, car (0 = other)
VOC_CLASSES = (0, 1, 7, 12, 15)  # background; aeroplane, car, dog, person
VOC_BOUNDARY = 255
NOISE_STD = 12.0


def _palette(dataset):
    """Per-class RGB colours of the mmseg dataset class, indexed by label value."""
    from mmseg.datasets import ADE20KDataset, CityscapesDataset, PascalVOCDataset
    if dataset == 'cityscapes':
        return np.array(CityscapesDataset.METAINFO['palette'], np.uint8)
    if dataset == 'voc':
        return np.array(PascalVOCDataset.METAINFO['palette'], np.uint8)
    # ADE20K labels are 1-based on disk; label 0 ("other") is black.
    return np.array([[0, 0, 0]] + list(ADE20KDataset.METAINFO['palette']), np.uint8)


def draw_sample(rng, height, width, classes, num_shapes=3):
    """(H, W) label map: ``classes[0]`` everywhere, then ``num_shapes`` shapes of the others."""
    label = np.full((height, width), classes[0], np.uint8)
    for _ in range(num_shapes):
        cls = int(rng.choice(classes[1:]))
        size = int(rng.integers(min(height, width) // 5, min(height, width) // 2))
        y = int(rng.integers(0, height - size))
        x = int(rng.integers(0, width - size))
        if rng.random() < 0.5:
            label[y:y + size, x:x + size] = cls
        else:
            cv2.circle(label, (x + size // 2, y + size // 2), size // 2, cls, thickness=-1)
    return label


def paint(rng, label, palette):
    """(H, W, 3) RGB uint8 image: the palette colour of each pixel's class plus noise."""
    image = palette[label].astype(np.float32)
    image += rng.normal(0, NOISE_STD, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _write_rgb(path, rgb):
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f'could not write {path}')


def _write_label(path, label, palette=None):
    os.makedirs(osp.dirname(path), exist_ok=True)
    image = Image.fromarray(label, mode='L' if palette is None else 'P')
    if palette is not None:
        image.putpalette(palette)
    image.save(path)


def make_cityscapes(root, rng, num_train, num_val, height, width):
    palette = _palette('cityscapes')
    cities = {'train': 'aachen', 'val': 'frankfurt'}
    for split, count in (('train', num_train), ('val', num_val)):
        city = cities[split]
        for i in range(count):
            stem = f'{city}_000000_{i:06d}'
            label = draw_sample(rng, height, width, CITYSCAPES_CLASSES)
            _write_rgb(osp.join(root, 'leftImg8bit', split, city, f'{stem}_leftImg8bit.png'),
                       paint(rng, label, palette))
            _write_label(
                osp.join(root, 'gtFine', split, city, f'{stem}_gtFine_labelTrainIds.png'), label)


def make_ade20k(root, rng, num_train, num_val, height, width):
    palette = _palette('ade20k')
    for split, tag, count in (('training', 'train', num_train), ('validation', 'val', num_val)):
        for i in range(count):
            stem = f'ADE_{tag}_{i + 1:08d}'
            # ADE20K images come in varied sizes: vary the width a little.
            w = width + 8 * int(rng.integers(-2, 3))
            label = draw_sample(rng, height, w, ADE20K_CLASSES)
            label[:, :2] = 0  # a strip of "other", ignored by the metric
            _write_rgb(osp.join(root, 'images', split, f'{stem}.jpg'), paint(rng, label, palette))
            _write_label(osp.join(root, 'annotations', split, f'{stem}.png'), label)


def make_voc(root, rng, num_train, num_val, height, width):
    palette = _palette('voc')
    full_palette = np.zeros((256, 3), np.uint8)
    full_palette[:len(palette)] = palette
    full_palette[VOC_BOUNDARY] = (224, 224, 192)
    names = {'train': [], 'val': [], 'aug': []}
    splits = (('train', num_train), ('val', num_val), ('aug', num_train))
    index = 0
    for split, count in splits:
        for _ in range(count):
            stem = f'2007_{index:06d}'
            index += 1
            names[split].append(stem)
            label = draw_sample(rng, height, width, VOC_CLASSES)
            # VOC outlines objects with a 255 "void" band.
            edges = cv2.morphologyEx(label, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
            label[edges] = VOC_BOUNDARY
            _write_rgb(osp.join(root, 'JPEGImages', f'{stem}.jpg'),
                       paint(rng, np.where(edges, 0, label), palette))
            if split == 'aug':
                _write_label(osp.join(root, 'SegmentationClassAug', f'{stem}.png'), label)
            else:
                _write_label(osp.join(root, 'SegmentationClass', f'{stem}.png'), label,
                             full_palette.flatten().tolist())
                if split == 'train':
                    _write_label(osp.join(root, 'SegmentationClassAug', f'{stem}.png'), label)
    for split, stems in names.items():
        path = osp.join(root, 'ImageSets', 'Segmentation', f'{split}.txt')
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(''.join(f'{stem}\n' for stem in stems))


# maker, data_root under the output folder (as in the configs), image (height, width)
MAKERS = {
    'cityscapes': (make_cityscapes, 'cityscapes', (64, 128)),
    'ade20k': (make_ade20k, osp.join('ade', 'ADEChallengeData2016'), (64, 80)),
    'voc': (make_voc, osp.join('VOCdevkit', 'VOC2012'), (64, 80)),
}


def make(out_dir, datasets=DATASETS, num_train=4, num_val=2, seed=0):
    """Write the chosen datasets under ``out_dir``; returns {dataset: its data_root}.

    The data roots are what the configs' ``data_root`` must be set to:
    ``<out>/cityscapes``, ``<out>/ade/ADEChallengeData2016`` and
    ``<out>/VOCdevkit/VOC2012``.
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train and num_val must be >= 1, got {num_train}, {num_val}')
    roots = {}
    unknown = sorted(set(datasets) - set(DATASETS))
    if unknown:
        raise ValueError(f'datasets must be among {DATASETS}, got {unknown}')
    for offset, name in enumerate(DATASETS):
        if name not in datasets:
            continue
        maker, folder, (height, width) = MAKERS[name]
        roots[name] = osp.join(out_dir, folder)
        maker(roots[name], np.random.default_rng([seed, offset]), num_train, num_val, height,
              width)
    return roots


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', default='data/seg_demo', help='output folder')
    parser.add_argument('--datasets', nargs='+', choices=DATASETS, default=list(DATASETS))
    parser.add_argument('--num-train', type=int, default=4, help='training images per dataset')
    parser.add_argument('--num-val', type=int, default=2, help='validation images per dataset')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        roots = make(args.out_dir, args.datasets, args.num_train, args.num_val, args.seed)
    except (ValueError, OSError) as err:
        sys.exit(f'make_seg_demo: {err}')
    for name, root in roots.items():
        print(f'{name}: data_root={root}')


if __name__ == '__main__':
    main()
