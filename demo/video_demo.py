"""Run a recognition model on your own video: top-k labels, and where a non-local block
looks from chosen points across all frames (the paper's Figure 1).

    python demo/video_demo.py VIDEO CONFIG CHECKPOINT [--label-map FILE] [--top-k 5]
        [--views 1] [--out-file out.mp4|out.gif|out.png] [--block NAME]
        [--queries t,y,x ...] [--num-queries 2] [--topk-keys 10] [--device cpu|cuda]

The video goes through the config's test pipeline: its test views (e.g. 10 clips x
3 crops) or, with ``--views 1``, the centre clip and centre crop; the scores are
those ``tools/test.py --dump`` gives for the same video. CHECKPOINT is an mmengine
``.pth`` or a raw official Caffe2 ``.pkl``. With ``--out-file`` the centre clip is
drawn with the labels and, for each query, the block's attention on every frame:
an MP4 or GIF has a frame per clip frame, a PNG or JPEG all frames on one sheet.
Queries are in the clip's coordinates (clip frame t, pixel y, x of the crop); by
default the block's positions where it changes the features most. See
:mod:`nlnet.apis`.
"""
import nlnet.openmmlab  # noqa: F401,I001  (first: registers nlnet's models)

import argparse
import sys
import time

from nlnet import apis
from nlnet.visualization import attention_overlay, non_local_blocks, parse_query, select_blocks


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Recognise a video and draw its attention')
    parser.add_argument('video', help='video file')
    parser.add_argument('config', help='recognition config file')
    parser.add_argument('checkpoint', help='checkpoint (.pth, or an official Caffe2 .pkl)')
    parser.add_argument('--label-map', help='class names, one per line (default: the shipped '
                        'Kinetics-400 or Charades map, by the config\'s dataset)')
    parser.add_argument('--top-k', type=int, default=5, help='labels printed')
    parser.add_argument('--views', type=int, help='1: the centre clip and crop only '
                        '(default: the config\'s test views)')
    parser.add_argument('--out-file', help='write the clip with labels and attention here '
                        '(.mp4, .gif: a frame per clip frame; .png, .jpg: one sheet)')
    parser.add_argument('--block', help='module path of the non-local block drawn '
                        '(default: the last one)')
    parser.add_argument('--queries', nargs='+', help='query positions t,y,x in clip frames and '
                        'crop pixels (default: the block\'s strongest positions)')
    parser.add_argument('--num-queries', type=int, default=2,
                        help='queries drawn when --queries is not given')
    parser.add_argument('--topk-keys', type=int, default=10, help='keys marked per query')
    parser.add_argument('--fps', type=float, default=4, help='frame rate of an .mp4 or .gif')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1, ...')
    args = parser.parse_args(argv)
    for option in ('top_k', 'num_queries', 'topk_keys'):
        if getattr(args, option) < 1:
            raise ValueError(f'--{option.replace("_", "-")} must be >= 1, got '
                             f'{getattr(args, option)}')
    if args.fps <= 0:
        raise ValueError(f'--fps must be > 0, got {args.fps}')
    return args


def _views_text(video, views):
    kind = 'the centre clip, centre crop' if views == 1 else "the config's test views"
    return f'{video.num_views} view{"s" if video.num_views > 1 else ""} ({kind})'


def print_labels(labels, independent):
    kind = 'per-class probabilities (sigmoid, multi-label)' if independent else \
        'class probabilities (softmax)'
    print(f'top {len(labels)} labels, {kind}:')
    width = max(len(label.name) for label in labels)
    for rank, label in enumerate(labels, 1):
        index = '' if label.name == f'class {label.index}' else f'  (class {label.index})'
        print(f'  {rank}. {label.name:<{width}}  {label.score:.4f}{index}')


def query_maps(model, video, block_name, queries, num_queries, topk_keys):
    """(block name, QueryAttentionMap) for each query of the drawn block, on the centre view."""
    blocks = non_local_blocks(model)
    if not blocks:
        return []
    name = block_name or list(blocks)[-1]
    block = select_blocks(model, [name], model.cfg.filename)[name]
    x = apis.capture_block_inputs(model, video.data)[name]
    input_size = video.frames.shape[:3]
    queries = queries or apis.default_queries(block, x, input_size, num_queries)
    return [(name, apis.query_attention_map(block, x, query, input_size, topk_keys))
            for query in queries]


def draw(out_file, video, attentions, labels, independent, fps):
    """Write the overlay; returns the number of images and their (width, height)."""
    header = attention_overlay.label_lines(labels, independent)
    if attention_overlay.check_out_file(out_file) in attention_overlay.ANIMATION_SUFFIXES:
        images = attention_overlay.overlay_frames(video.frames, attentions, header,
                                                  video.frame_inds)
        attention_overlay.write_animation(out_file, images, fps)
    else:
        images = [attention_overlay.figure_sheet(video.frames, attentions, header)]
        attention_overlay.write_image(out_file, images[0])
    return len(images), (images[0].shape[1], images[0].shape[0])


def main(argv=None):
    args = parse_args(argv)
    queries = [parse_query(text) for text in args.queries] if args.queries else None
    if args.out_file:
        attention_overlay.check_out_file(args.out_file)
    start = time.perf_counter()
    model = apis.load_model(args.config, args.checkpoint, args.device)
    blocks = non_local_blocks(model)
    print(f'model of {args.config} loaded from {args.checkpoint} on {args.device} '
          f'({len(blocks)} non-local block{"" if len(blocks) == 1 else "s"}) in '
          f'{time.perf_counter() - start:.1f} s')
    names = apis.label_names(model.cfg, model.cls_head.num_classes, args.label_map)
    independent = apis.scores_are_independent(model)

    start = time.perf_counter()
    video = apis.read_video(args.video, model.cfg, args.views)
    if video.note:
        print(video.note)
    scores = apis.video_scores(model, video)
    print(f'{args.video}: {video.total_frames} frames, {_views_text(video, args.views)}, '
          f'read and recognised in {time.perf_counter() - start:.2f} s')
    labels = apis.top_labels(scores, names, args.top_k)
    print_labels(labels, independent)
    result = dict(scores=scores, labels=labels, video=video)
    if not args.out_file:
        return result

    start = time.perf_counter()
    centre = video if args.views == 1 else apis.read_video(args.video, model.cfg, views=1)
    attentions = query_maps(model, centre, args.block, queries, args.num_queries,
                            args.topk_keys)
    if not attentions:
        print(f'note: the model of {args.config} has no non-local block: the clip is drawn '
              'with its labels only')
    count, (width, height) = draw(args.out_file, centre, attentions, labels, independent,
                                  args.fps)
    drawn = ', '.join(f'{name} at t,y,x={",".join(f"{v:g}" for v in attention.query)}'
                      for name, attention in attentions) or 'no attention'
    print(f'wrote {args.out_file}: {count} image{"s" if count > 1 else ""} of {width}x{height} '
          f'({drawn}) in {time.perf_counter() - start:.2f} s')
    result.update(attentions=attentions, out_file=args.out_file, images=count,
                  size=(width, height))
    return result


if __name__ == '__main__':
    try:
        main()
    except ValueError as error:
        sys.exit(f'video_demo.py: error: {error}')
