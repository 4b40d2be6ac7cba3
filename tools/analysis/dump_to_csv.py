"""Write one CSV row per video of a ``tools/test.py --dump`` file.

    python tools/analysis/dump_to_csv.py work_dirs/run/result.pkl result.csv [--top-k 5]

Columns: index, filename, label, status (scored / broken / skipped), num_views,
then the top-k classes and their scores (:mod:`nlnet.evaluation.dump_csv`).
"""
import argparse
import sys

from nlnet.evaluation.dump_csv import read_dump, write_dump_csv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('dump', help='pickle written by tools/test.py --dump')
    parser.add_argument('out', help='the CSV file to write')
    parser.add_argument('--top-k', type=int, default=5, help='predicted classes per row')
    args = parser.parse_args(argv)
    try:
        rows = write_dump_csv(read_dump(args.dump), args.out, args.top_k)
    except ValueError as error:
        sys.exit(f'dump_to_csv.py: error: {error}')
    print(f'{rows} rows written to {args.out}')


if __name__ == '__main__':
    main()
