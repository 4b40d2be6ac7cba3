"""Interactive attention explorer: a web page where you upload a video, read the predicted
labels and click a point on a frame to see where each non-local block attends across all
frames.

    python demo/attention_app.py CONFIG CHECKPOINT [--port 7860] [--device cpu]

Needs the ``app`` extra (``pip install .[app]``: Gradio). The page logic lives in
:mod:`nlnet.apps.attention_explorer`.
"""
import nlnet.openmmlab  # noqa: F401,I001  (registers nlnet's models before configs build)
import argparse
import glob
import os.path as osp
import sys

from nlnet.apis import label_names, load_model
from nlnet.apps.attention_explorer import ExplorerPage
from nlnet.apps.attention_session import AttentionExplorer

EXAMPLES = sorted(glob.glob(osp.join(osp.dirname(osp.abspath(__file__)), 'examples', '*.mp4')))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='a recognition config with non-local blocks')
    parser.add_argument('checkpoint', help='its weights (.pth, or a raw official Caffe2 .pkl)')
    parser.add_argument('--port', type=int, default=7860, help='port to serve on (default 7860)')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to serve on (default 127.0.0.1; 0.0.0.0 for all)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1, ... (default cpu)')
    parser.add_argument('--label-map', help='class names, one a line (default: the shipped map '
                        'of the config\'s dataset, else "class <i>")')
    parser.add_argument('--views', choices=['1', 'test'], default='1',
                        help='1: the centre clip and crop (default, fast); test: the config\'s '
                        'test views for the labels (heat maps show the first view)')
    parser.add_argument('--top-k', type=int, default=5, help='labels listed (default 5)')
    parser.add_argument('--num-keys', type=int, default=8, help='top keys marked (default 8)')
    parser.add_argument('--examples', nargs='*', default=EXAMPLES,
                        help='example videos offered on the page (default: demo/examples/*.mp4)')
    return parser.parse_args(argv)


def build_page(args):
    model = load_model(args.config, args.checkpoint, args.device)
    names = label_names(model.cfg, model.cls_head.num_classes, args.label_map)
    explorer = AttentionExplorer(model, names, views=1 if args.views == '1' else None,
                                 num_labels=args.top_k, num_keys=args.num_keys)
    return ExplorerPage(explorer, args.examples)


def main(argv=None):
    args = parse_args(argv)
    if args.top_k < 1 or args.num_keys < 1:
        sys.exit(f'attention_app.py: error: --top-k and --num-keys must be >= 1, got '
                 f'{args.top_k}, {args.num_keys}')
    try:
        page = build_page(args)
    except ValueError as error:
        sys.exit(f'attention_app.py: error: {error}')
    print(f'attention explorer: {args.config} with {args.checkpoint} on {args.device}; '
          f'open http://{args.host}:{args.port}')
    page.launch(args.host, args.port)


if __name__ == '__main__':
    main()
