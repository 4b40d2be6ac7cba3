"""How tools/train.py and tools/test.py end: one ``__main__`` for both."""
import os.path as osp
import sys

from ..utils.atomic_save import CheckpointSaveError
from ..utils.distributed import exit_after_distributed_run
from ..utils.preemption import TrainingPreempted, leave_preempted
from ..utils.preflight import PreflightError

__all__ = ['run_tool_main']

# argparse's exit status for a bad command line; a run refused by a check ends the same way.
USAGE_ERROR_STATUS = 2
# A run that stopped because a checkpoint found no room on the disk.
SAVE_ERROR_STATUS = 1


def run_tool_main(main):
    """Run a tool's ``main()`` as its ``__main__`` block.

    A :class:`PreflightError` ends the process with ``<tool>: error: <message>``
    on stderr and exit status 2, as argparse reports a bad argument; other
    exceptions propagate with their traceback, but for a
    :class:`~nlnet.utils.atomic_save.CheckpointSaveError` (one line, exit
    status 1) and a run stopped by a preemption signal
    (:func:`~nlnet.utils.preemption.leave_preempted`, exit status 143). A
    finished multi-process run then leaves at once
    (:func:`~nlnet.utils.distributed.exit_after_distributed_run`).

    Args:
        main (Callable[[], None]): the tool's entry point, reading ``sys.argv``.
    """
    try:
        main()
    except PreflightError as error:
        print(f'{osp.basename(sys.argv[0])}: error: {error}', file=sys.stderr)
        sys.exit(USAGE_ERROR_STATUS)
    except CheckpointSaveError as error:
        print(f'{osp.basename(sys.argv[0])}: error: {error}', file=sys.stderr)
        sys.exit(SAVE_ERROR_STATUS)
    except TrainingPreempted as stop:
        leave_preempted(stop)
    exit_after_distributed_run()
