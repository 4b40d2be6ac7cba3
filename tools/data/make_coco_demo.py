"""Generate a small instance-segmentation dataset in COCO's on-disk layout.

Each image holds a few filled shapes (``square``, ``disc``, ``triangle``) of random
colour, size and place on a noisy background; every shape is one instance whose
mask is the polygon it was drawn from, so boxes, polygons and pixels agree.
Shapes may overlap; a later shape occludes an earlier one, and each polygon is
the full outline (as in COCO, where annotators outline occluded objects).

Layout written under ``--out-dir`` (default ``data/coco_demo``)::

    train2017/000000000001.jpg ...
    val2017/000000001001.jpg ...
    annotations/instances_train2017.json
    annotations/instances_val2017.json

The instances files have COCO's keys (``images``, ``annotations`` with ``bbox``
[x, y, w, h], ``area``, ``segmentation`` polygons and ``iscrowd``, and
``categories``). The output is a deterministic function of the arguments.
Use it with mmdet's ``CocoDataset`` and ``metainfo=dict(classes=CLASSES)``.
"""
import argparse
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np

CLASSES = ('square', 'disc', 'triangle')
SPLITS = ('train', 'val')
_DISC_VERTICES = 16
_IMAGE_ID_OFFSET = {'train': 1, 'val': 1001}


def _shape_polygon(rng, name, width, height, min_size, max_size):
    """(V, 2) float vertices of one shape lying inside the image."""
    size = rng.uniform(min_size, max_size)
    cx = rng.uniform(size / 2, width - size / 2)
    cy = rng.uniform(size / 2, height - size / 2)
    if name == 'square':
        points = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * size / 2
    elif name == 'disc':
        angles = np.arange(_DISC_VERTICES) * 2 * np.pi / _DISC_VERTICES
        points = np.stack([np.cos(angles), np.sin(angles)], 1) * size / 2
    else:
        angles = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3 + rng.uniform(0, 2 * np.pi / 3)
        points = np.stack([np.cos(angles), np.sin(angles)], 1) * size / 2
    points = points + [cx, cy]
    return np.clip(np.round(points, 1), 0, [width - 1, height - 1])


def _polygon_area(points):
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def make_split(out_dir, split, num_images, width, height, max_objects, seed):
    """Write ``<split>2017/*.jpg`` and ``annotations/instances_<split>2017.json``.

    Returns:
        str: the path of the instances json.
    """
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    image_dir = osp.join(out_dir, f'{split}2017')
    os.makedirs(image_dir, exist_ok=True)
    images, annotations = [], []
    min_size = min(width, height) / 5
    max_size = min(width, height) / 2
    for index in range(num_images):
        image_id = _IMAGE_ID_OFFSET[split] + index
        file_name = f'{image_id:012d}.jpg'
        canvas = rng.integers(0, 60, size=(height, width, 3), dtype=np.uint8)
        for _ in range(int(rng.integers(1, max_objects + 1))):
            label = int(rng.integers(len(CLASSES)))
            points = _shape_polygon(rng, CLASSES[label], width, height, min_size, max_size)
            colour = tuple(int(c) for c in rng.integers(100, 256, size=3))
            cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], colour)
            x0, y0 = points.min(0)
            x1, y1 = points.max(0)
            annotations.append(
                dict(id=len(annotations) + 1, image_id=image_id, category_id=label + 1,
                     bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                     area=_polygon_area(points),
                     segmentation=[[float(v) for v in points.reshape(-1)]], iscrowd=0))
        cv2.imwrite(osp.join(image_dir, file_name), canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=image_id, file_name=file_name, width=width, height=height))
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(CLASSES)]
    ann_dir = osp.join(out_dir, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    ann_file = osp.join(ann_dir, f'instances_{split}2017.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return ann_file


def make_coco_demo(out_dir, num_train=8, num_val=4, width=128, height=96, max_objects=3,
                   seed=0):
    """Write both splits under ``out_dir``; returns ``{split: instances json path}``."""
    counts = dict(train=num_train, val=num_val)
    return {
        split: make_split(out_dir, split, counts[split], width, height, max_objects, seed)
        for split in SPLITS
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out-dir', default='data/coco_demo')
    parser.add_argument('--num-train', type=int, default=8)
    parser.add_argument('--num-val', type=int, default=4)
    parser.add_argument('--width', type=int, default=128)
    parser.add_argument('--height', type=int, default=96)
    parser.add_argument('--max-objects', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    for name in ('num_train', 'num_val', 'max_objects'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    if min(args.width, args.height) < 32:
        parser.error(f'--width and --height must be >= 32 (mmdet filters smaller images), '
                     f'got {args.width}x{args.height}')
    return args


def main(argv=None):
    args = parse_args(argv)
    ann_files = make_coco_demo(args.out_dir, args.num_train, args.num_val, args.width,
                               args.height, args.max_objects, args.seed)
    for split, path in ann_files.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    sys.exit(main())
