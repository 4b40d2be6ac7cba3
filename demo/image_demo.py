"""Segment your own image with a NonLocalNet config and draw where its non-local block
looks from chosen pixels.

    python demo/image_demo.py IMAGE CONFIG CHECKPOINT [--out-file out.png]
        [--query y,x ...] [--num-queries 2] [--topk-keys 10] [--opacity 0.5]
        [--device cpu|cuda]

The image goes through the config's test pipeline (as ``tools/test.py`` runs it);
the mask is the segmentor's ``test_step`` output at the image's size. It prints
the classes covering most of the image; with ``--out-file`` it writes the mask
blended on the image in the dataset's class palette, then for each query pixel
(``y,x`` in image pixels; default: the block's strongest positions) the block's
attention as a heat map with arrows to its top keys. See :mod:`nlnet.apis`.
"""
import nlnet.openmmlab  # noqa: F401,I001  (first: registers nlnet's models)

import argparse
import sys
import time

import numpy as np

from nlnet import apis
from nlnet.visualization import attention_overlay, non_local_blocks, parse_query


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Segment an image and draw its attention')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='segmentation config file (NonLocalNet)')
    parser.add_argument('checkpoint', help='checkpoint of the config\'s model')
    parser.add_argument('--out-file', help='write the mask and the attention here (.png, .jpg)')
    parser.add_argument('--query', nargs='+', help='query pixels y,x of the image (default: '
                        'the block\'s strongest positions)')
    parser.add_argument('--num-queries', type=int, default=2,
                        help='queries drawn when --query is not given')
    parser.add_argument('--topk-keys', type=int, default=10, help='keys marked per query')
    parser.add_argument('--top-k', type=int, default=5, help='classes printed')
    parser.add_argument('--opacity', type=float, default=0.5, help='palette over the image')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1, ...')
    args = parser.parse_args(argv)
    for option in ('num_queries', 'topk_keys', 'top_k'):
        if getattr(args, option) < 1:
            raise ValueError(f'--{option.replace("_", "-")} must be >= 1, got '
                             f'{getattr(args, option)}')
    if not 0 <= args.opacity <= 1:
        raise ValueError(f'--opacity must be in [0, 1], got {args.opacity}')
    return args


def class_shares(mask, classes, top_k):
    """[(class name, share of the pixels)] of the ``top_k`` largest classes."""
    ids, counts = np.unique(mask, return_counts=True)
    order = sorted(zip(ids.tolist(), counts.tolist()), key=lambda item: (-item[1], item[0]))
    return [(classes[i] if 0 <= i < len(classes) else f'class {i}', count / mask.size)
            for i, count in order[:top_k]]


def query_maps(model, segmentation, queries, num_queries, topk_keys):
    """(block name, QueryAttentionMap) per query of the last non-local block; queries
    in image pixels, the maps in model input coordinates."""
    blocks = non_local_blocks(model)
    if not blocks or not segmentation.block_inputs:
        return []
    name = list(blocks)[-1]
    block, x = blocks[name], segmentation.block_inputs[name]
    input_size = segmentation.input_size
    queries = ([segmentation.to_input(query) for query in queries] if queries else
               apis.default_queries(block, x, input_size, num_queries))
    return [(name, apis.query_attention_map(block, x, query, input_size, topk_keys))
            for query in queries]


def main(argv=None):
    args = parse_args(argv)
    queries = [parse_query(text) for text in args.query] if args.query else None
    if args.out_file:
        attention_overlay.check_out_file(args.out_file)
    start = time.perf_counter()
    model = apis.load_model(args.config, args.checkpoint, args.device)
    print(f'model of {args.config} loaded from {args.checkpoint} on {args.device} '
          f'in {time.perf_counter() - start:.1f} s')
    start = time.perf_counter()
    segmentation = apis.segment_image(model, args.image)
    height, width = segmentation.image.shape[:2]
    print(f'{args.image}: {width}x{height}, seen by the model at '
          f'{segmentation.input_size[1]}x{segmentation.input_size[0]}, segmented in '
          f'{time.perf_counter() - start:.2f} s')
    classes = model.dataset_meta['classes']
    shares = class_shares(segmentation.mask, classes, args.top_k)
    print(f'largest classes of the mask ({len(np.unique(segmentation.mask))} present):')
    for name, share in shares:
        print(f'  {name:<16} {100 * share:5.1f} %')
    result = dict(segmentation=segmentation, shares=shares)
    if not args.out_file:
        return result

    attentions = query_maps(model, segmentation, queries, args.num_queries, args.topk_keys)
    if segmentation.note:
        print(segmentation.note)
    to_image = (height / segmentation.input_size[0], width / segmentation.input_size[1])
    header = [f'mask in the palette of {model.cfg.test_dataloader.dataset.type} '
              f'({len(classes)} classes)',
              'largest: ' + ', '.join(f'{name} {100 * share:.0f} %' for name, share in shares[:3])]
    figure = attention_overlay.segmentation_figure(
        segmentation.image, segmentation.mask, model.dataset_meta['palette'], attentions,
        header, to_image, args.opacity)
    attention_overlay.write_image(args.out_file, figure)
    drawn = (f'the mask and {len(attentions)} queries of {attentions[0][0]}' if attentions else
             'the mask only')
    print(f'wrote {args.out_file}: {figure.shape[1]}x{figure.shape[0]}, {drawn}')
    result.update(attentions=attentions, figure=figure)
    return result


if __name__ == '__main__':
    try:
        main()
    except ValueError as error:
        sys.exit(f'image_demo.py: error: {error}')
