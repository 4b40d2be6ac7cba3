"""Speed of checking videos of Kinetics' size: tools/data/check_videos.py and the build-time check.

Generates ``--videos`` clips of 10 s at 30 fps, 340x256 (Kinetics as MMAction2
resizes it), in H.264 as Kinetics' files are (libx264 through PyAV, x264's default
keyframe interval of 250; OpenCV's MPEG-4 Part 2 'mp4v' where PyAV is missing),
then measures on the same files, in this run:

* ``check_video`` in its two modes (what each ``check_videos.py`` worker does per
  video), in one process: the default (open, frame count, decode the frames the
  configs' validation and test views read) and ``thorough`` (also every frame in
  order); videos per second per worker;
* the reference: MMAction2's own reading transforms (``DecordInit`` +
  ``DecordDecode`` of the default's frames), in one process;
* ``scan_videos`` with ``--workers`` processes (the whole tool), both modes;
* ``RobustVideoDataset(skip_broken=True)``'s build-time check per video, and
  what it would cost on a 20k-video validation set in one process.

    python benchmarks/bench_check_videos.py [--videos 16] [--workers 2] [--json out.json]
"""
import argparse
import json
import os.path as osp
import tempfile
import time

import cv2
import numpy as np
from mmaction.registry import DATASETS, TRANSFORMS
from mmengine.registry import init_default_scope

import nlnet.openmmlab  # noqa: F401  (registers RobustVideoDataset)
from nlnet.datasets.video_check import check_video, scan_videos, view_frames

try:
    import av
except ImportError:  # the test requirements install it
    av = None

SECONDS, FPS, WIDTH, HEIGHT = 10, 30, 340, 256
VALIDATION_SET = 20000


class H264Writer:
    """libx264 through PyAV, x264's defaults but one thread (BGR frames in)."""

    codec = 'h264'

    def __init__(self, path):
        self.container = av.open(path, 'w')
        self.stream = self.container.add_stream('libx264', rate=FPS)
        self.stream.width, self.stream.height, self.stream.pix_fmt = WIDTH, HEIGHT, 'yuv420p'
        self.stream.options = {'threads': '1'}

    def write(self, frame):
        self.container.mux(self.stream.encode(av.VideoFrame.from_ndarray(frame, format='bgr24')))

    def release(self):
        self.container.mux(self.stream.encode())
        self.container.close()


def open_writer(path):
    """A writer of H.264 (PyAV) where it can, else OpenCV's mp4v; and its codec."""
    if av is not None:
        return H264Writer(path), H264Writer.codec
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError('neither PyAV (H.264) nor OpenCV (mp4v) can write a video here')
    return writer, 'mp4v'


def write_clip(path, rng):
    """A moving textured scene: a drifting gradient background and a few moving squares."""
    writer, codec = open_writer(path)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    squares = rng.integers(0, 200, size=(4, 5))
    for t in range(SECONDS * FPS):
        frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        frame[..., 0] = (xs + 3 * t) % 256
        frame[..., 1] = (ys + 2 * t) % 256
        frame[..., 2] = (xs + ys + t) % 256
        for top, left, b, g, r in squares:
            y, x = (top + 2 * t) % (HEIGHT - 40), (left + 3 * t) % (WIDTH - 40)
            frame[y:y + 40, x:x + 40] = (b, g, r)
        writer.write(frame)
    writer.release()
    return codec


def per_video_seconds(paths, reads, rounds=3):
    """Best-of-``rounds`` seconds per video of each reader, the readers alternating per round."""
    best = [float('inf')] * len(reads)
    for _ in range(rounds):
        for which, read in enumerate(reads):
            start = time.perf_counter()
            for path in paths:
                read(path)
            best[which] = min(best[which], (time.perf_counter() - start) / len(paths))
    return best


def mmaction_reader():
    """MMAction2's reading stage (built once) for the frames check_video decodes by default."""
    init = TRANSFORMS.build(dict(type='DecordInit'))
    decode = TRANSFORMS.build(dict(type='DecordDecode'))

    def read(path):
        results = init(dict(filename=path, start_index=0, modality='RGB'))
        results['frame_inds'] = np.array(view_frames(results['total_frames']))
        results['num_clips'], results['clip_len'] = 1, len(results['frame_inds'])
        decode(results)

    return read


def thorough_check(path):
    return check_video(path, thorough=True)


def scan_rate(ann_file, root, workers, thorough):
    """Videos per second of scan_videos over the list (a fresh output folder)."""
    start = time.perf_counter()
    result = scan_videos(ann_file, root, tempfile.mkdtemp(dir=root), workers=workers,
                         thorough=thorough)
    return len(result.entries) / (time.perf_counter() - start)


def build_time_check_seconds(ann_file, prefix):
    """Seconds per video of RobustVideoDataset's skip_broken check (Kinetics val pipeline)."""
    pipeline = [dict(type='DecordInit'),
                dict(type='SampleFrames', clip_len=8, frame_interval=8, num_clips=1,
                     test_mode=True),
                dict(type='DecordDecode'), dict(type='FormatShape', input_format='NCTHW'),
                dict(type='PackActionInputs')]
    seconds = {}
    for skip_broken in (False, True):
        start = time.perf_counter()
        dataset = DATASETS.build(dict(type='RobustVideoDataset', ann_file=ann_file,
                                      data_prefix=dict(video=prefix), pipeline=pipeline,
                                      test_mode=True, skip_broken=skip_broken))
        seconds[skip_broken] = time.perf_counter() - start
    # Without the check the build only parses the list and the pipeline.
    return (seconds[True] - seconds[False]) / len(dataset)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--videos', type=int, default=16, help='generated clips')
    parser.add_argument('--workers', type=int, default=2, help='processes for scan_videos')
    parser.add_argument('--json', help='write the figures to this file')
    args = parser.parse_args()
    init_default_scope('mmaction')
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as root:
        names = [f'clip_{i:03d}.mp4' for i in range(args.videos)]
        codecs = {write_clip(osp.join(root, name), rng) for name in names}
        paths = [osp.join(root, name) for name in names]
        ann_file = osp.join(root, 'list.txt')
        with open(ann_file, 'w') as handle:
            handle.writelines(f'{name} 0\n' for name in names)
        megabytes = sum(osp.getsize(p) for p in paths) / len(paths) / 2**20

        check_video(paths[0])  # warm-up: library loading
        ours, thorough, reference = per_video_seconds(
            paths, (check_video, thorough_check, mmaction_reader()))
        scans = {mode: scan_rate(ann_file, root, args.workers, mode == 'thorough')
                 for mode in ('default', 'thorough')}
        build_check = build_time_check_seconds(ann_file, root)

    record = dict(videos=args.videos, codec=sorted(codecs), mib_per_video=megabytes,
                  check_video_s=ours, thorough_check_s=thorough, mmaction_read_s=reference,
                  ratio=ours / reference, videos_per_s_per_worker=1 / ours,
                  thorough_videos_per_s_per_worker=1 / thorough, scan_workers=args.workers,
                  scan_videos_per_s=scans['default'],
                  thorough_scan_videos_per_s=scans['thorough'], build_time_check_s=build_check,
                  build_time_check_20k_min=VALIDATION_SET * build_check / 60)
    print(f'{args.videos} clips of {SECONDS} s, {WIDTH}x{HEIGHT} at {FPS} fps, '
          f'codec {"/".join(sorted(codecs))}, {megabytes:.2f} MiB each')
    print(f'check_video, default (one worker):  {1 / ours:6.1f} videos/s '
          f'({1000 * ours:.0f} ms/video)')
    print(f'check_video, thorough (one worker): {1 / thorough:6.1f} videos/s '
          f'({1000 * thorough:.0f} ms/video)')
    print(f'MMAction2 DecordInit+DecordDecode of the default\'s frames: {1 / reference:6.1f} '
          f'videos/s ({1000 * reference:.0f} ms/video); default / MMAction2 time: '
          f'{ours / reference:.2f}x')
    for mode, rate in scans.items():
        print(f'scan_videos, {mode}, {args.workers} workers: {rate:6.1f} videos/s')
    print(f'skip_broken build-time check:       {1000 * build_check:.0f} ms/video, '
          f'{VALIDATION_SET * build_check / 60:.1f} min for {VALIDATION_SET} videos in one process')
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(record, handle, indent=2)


if __name__ == '__main__':
    main()
