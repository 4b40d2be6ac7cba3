"""Example videos for the attention explorer (``demo/examples/``): demo-task videos drawn by
the demo dataset's generator (``make_demo_dataset.DemoVideoSpec``), one per class, encoded
in H.264, which browsers play (the dataset's MPEG-4 Part 2 they do not).

    python tools/data/make_demo_examples.py [--out-dir demo/examples] [--seed 0] [--count 3]

Each video is named by its class (``cue_at_<cell>.mp4``); the videos are drawn in
turn from one random generator seeded with ``--seed`` and the first of each class
is kept. libx264 runs on one thread at a fixed quality, so the same seed gives the
same bytes.
"""
import argparse
import importlib.util
import os
import os.path as osp

import av
import cv2
import numpy as np

FPS = 8
# Near-lossless: the 32 px frames' colour squares survive 4:2:0 chroma as well as the
# dataset's MPEG-4 Part 2 copies do.
QUALITY = '12'


def _generator():
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'make_demo_dataset.py')
    spec = importlib.util.spec_from_file_location('make_demo_dataset', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_demo_dataset = _generator()


def write_h264(path, frames_bgr, fps=FPS):
    """Encode BGR ``frames_bgr`` (all of one size, even sides) as H.264 (yuv420p) MP4."""
    height, width = frames_bgr[0].shape[:2]
    with av.open(str(path), 'w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        stream.options = {'crf': QUALITY, 'threads': '1', 'preset': 'medium'}
        for frame in frames_bgr:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format='rgb24')))
        container.mux(stream.encode())
    return str(path)


def make_examples(out_dir, count=3, seed=0, spec=None):
    """Write the first video of each of ``count`` classes; returns their paths, in class order.

    Raises:
        ValueError: ``count`` outside [1, number of classes].
    """
    spec = spec or make_demo_dataset.DemoVideoSpec()
    names = make_demo_dataset.class_names(spec.grid)
    if not 1 <= count <= len(names):
        raise ValueError(f'--count must be in [1, {len(names)}] (the classes), got {count}')
    rng = np.random.default_rng(seed)
    found = {}
    while len(found) < count:
        frames, label, _ = spec.render(rng)
        found.setdefault(label, frames)
    os.makedirs(out_dir, exist_ok=True)
    return [write_h264(osp.join(out_dir, f'{names[label]}.mp4'), found[label])
            for label in sorted(found)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out-dir', default='demo/examples', help='default: demo/examples')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default 0)')
    parser.add_argument('--count', type=int, default=3, help='videos, one per class (default 3)')
    args = parser.parse_args(argv)
    for path in make_examples(args.out_dir, args.count, args.seed):
        print(f'{path}: {osp.getsize(path)} bytes')


if __name__ == '__main__':
    main()
