"""Print the metrics of ``tools/test.py --dump`` pickles side by side.

    python tools/analysis/summarize_dumps.py work_dirs/a/result.pkl work_dirs/b/result.pkl

The dumps hold plain Python and numpy objects, so this needs neither torch nor
OpenMMLab.
"""
import argparse
import os.path as osp
import pickle
import sys


def load_dump(path):
    """The dump at ``path`` as a dict; exits with a message naming the file if it is unusable."""
    try:
        with open(path, 'rb') as handle:
            dump = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError) as error:
        sys.exit(f'{path}: cannot read the dump ({type(error).__name__}: {error})')
    if not isinstance(dump, dict) or 'metrics' not in dump:
        sys.exit(f'{path}: not a tools/test.py --dump file (no "metrics" key)')
    return dump


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('dumps', nargs='+', help='pickles written by tools/test.py --dump')
    args = parser.parse_args(argv)
    dumps = [load_dump(path) for path in args.dumps]
    names = sorted({key for dump in dumps for key in dump['metrics']})
    rows = [['config', 'samples', 'skipped'] + names]
    for dump in dumps:
        metrics = dump['metrics']
        rows.append([osp.splitext(osp.basename(dump['config']))[0], str(len(dump['samples'])),
                     str(len(dump['skipped']))] +
                    [f'{metrics[name]:.4f}' if name in metrics else '-' for name in names])
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print('  '.join(cell.ljust(width) for cell, width in zip(row, widths)))


if __name__ == '__main__':
    main()
