"""Broken files of every kind Kinetics copies hold, mixed into a generated demo split.

Kinds: ``missing`` (listed, not on disk), ``empty`` (0 bytes), ``truncated``
(a real video cut in the middle of its stream), ``not_a_video`` (text under a
video's name) and ``zero_frames`` (a container OpenCV closed before any frame).
"""
import os.path as osp

import cv2

BROKEN_KINDS = ('missing', 'empty', 'truncated', 'not_a_video', 'zero_frames')


def add_broken_videos(root, split, ann_file, out_name=None):
    """Write broken files into ``videos_<split>`` and a list of ``ann_file`` plus them.

    The broken entries are spread through the list (not only at its end) and
    carry labels 0, 1, 2, ... in turn.

    Returns:
        tuple[str, dict]: the new list's path and ``{kind: full path}``.
    """
    prefix = osp.join(root, f'videos_{split}')
    with open(ann_file) as handle:
        lines = handle.read().splitlines()
    first = lines[0].split()[0]
    class_dir = osp.dirname(first)
    with open(osp.join(prefix, first), 'rb') as handle:
        video = handle.read()
    contents = dict(empty=b'', truncated=video[:len(video) // 2],
                    not_a_video=b'<html>This video is no longer available</html>\n' * 20)
    broken = {}
    for label, kind in enumerate(BROKEN_KINDS):
        relative = f'{class_dir}/{kind}_{split}.mp4'
        path = osp.join(prefix, relative)
        broken[kind] = path
        if kind == 'zero_frames':
            writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), 8, (32, 32))
            writer.release()
        elif kind in contents:
            with open(path, 'wb') as handle:
                handle.write(contents[kind])
        lines.insert(2 * label + 1, f'{relative} {label % 4}')
    out = osp.join(root, out_name or f'broken5_{split}.txt')
    with open(out, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    return out, broken
