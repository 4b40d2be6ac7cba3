"""How tools/train.py and tools/test.py end: one ``__main__`` for both."""
import os.path as osp
import sys

from ..utils.distributed import exit_after_distributed_run
from ..utils.preflight import PreflightError

__all__ = ['run_tool_main']

# argparse's exit status for a bad command line; a run refused by a check ends the same way.
USAGE_ERROR_STATUS = 2


def run_tool_main(main):
    """Run a tool's ``main()`` as its ``__main__`` block.

    A :class:`PreflightError` ends the process with ``<tool>: error: <message>``
    on stderr and exit status 2, as argparse reports a bad argument; other
    exceptions propagate with their traceback. A finished multi-process run
    then leaves at once (:func:`~nlnet.utils.distributed.exit_after_distributed_run`).

    Args:
        main (Callable[[], None]): the tool's entry point, reading ``sys.argv``.
    """
    try:
        main()
    except PreflightError as error:
        print(f'{osp.basename(sys.argv[0])}: error: {error}', file=sys.stderr)
        sys.exit(USAGE_ERROR_STATUS)
    exit_after_distributed_run()
