"""Check every video of a Kinetics-style annotation list before training on it.

    python tools/data/check_videos.py ANN_FILE DATA_PREFIX [--workers N] [--out-dir DIR] [--thorough]

Opens each listed video with decord in N processes, reads its frame count and
decodes the frames the shipped configs' validation and test views read (and the
first, middle and last); with --thorough also every frame in order. A progress
bar shows the rate and ETA. Writes
to DIR (default: ``check_<annotation name>`` beside ANN_FILE) ``broken.txt``
(path and reason), ``ok_list.txt`` (the annotation without the broken entries;
use it as ``ann_file``) and ``summary.txt`` (counts per reason and class, the
classes without a readable video, Kinetics-400's split sizes beside the ones
found). Run it again after an interruption: it resumes where it stopped.
"""
import argparse
import os.path as osp
import sys

from nlnet.datasets.video_check import scan_videos


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Find the unreadable videos of a video list')
    parser.add_argument('ann_file', help='video list, "<path relative to DATA_PREFIX> <label>" '
                        'per line')
    parser.add_argument('data_prefix', help='folder the listed paths are relative to')
    parser.add_argument('--workers', type=int, default=4, help='decoding processes')
    parser.add_argument('--out-dir', help='output folder (default: check_<ANN_FILE name> '
                        'beside ANN_FILE)')
    parser.add_argument('--thorough', action='store_true',
                        help='decode every frame (default: the frames of the configs\' '
                        'validation and test views)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out_dir = args.out_dir or osp.join(
        osp.dirname(osp.abspath(args.ann_file)),
        'check_' + osp.splitext(osp.basename(args.ann_file))[0])
    try:
        result = scan_videos(args.ann_file, args.data_prefix, out_dir, workers=args.workers,
                             progress_file=sys.stderr, thorough=args.thorough)
    except (FileNotFoundError, ValueError) as error:
        print(f'check_videos.py: error: {error}', file=sys.stderr)
        return 2
    print('\n'.join(result.summary()))
    print(f'written to {out_dir}: broken.txt, ok_list.txt, summary.txt')
    return 0


if __name__ == '__main__':
    sys.exit(main())
