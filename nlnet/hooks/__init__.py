"""nlnet's runner hooks; importing this module registers them in mmengine's HOOKS."""
from .. import compat  # noqa: F401,I001  (first: the stack fixes before any mm import)
from .atomic_checkpoint_hook import AtomicCheckpointHook, atomic_checkpoint_cfg
from .broken_video_hook import BrokenVideoHook
from .checkpoint_check_hook import CheckpointCheckHook
from .drop_checkpoint_keys_hook import DropCheckpointKeysHook
from .preemption_hook import PreemptionHook
from .rank_log_hook import RankLogHook
from .resume_check_hook import ResumeCheckHook, run_config_differences

__all__ = [
    'AtomicCheckpointHook', 'atomic_checkpoint_cfg', 'BrokenVideoHook', 'CheckpointCheckHook',
    'DropCheckpointKeysHook', 'PreemptionHook', 'RankLogHook', 'ResumeCheckHook',
    'run_config_differences'
]
