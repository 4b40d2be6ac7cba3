"""nlnet's runner hooks; importing this module registers them in mmengine's HOOKS."""
from .broken_video_hook import BrokenVideoHook
from .checkpoint_check_hook import CheckpointCheckHook
from .drop_checkpoint_keys_hook import DropCheckpointKeysHook
from .rank_log_hook import RankLogHook
from .resume_check_hook import ResumeCheckHook, run_config_differences

__all__ = [
    'BrokenVideoHook', 'CheckpointCheckHook', 'DropCheckpointKeysHook', 'RankLogHook',
    'ResumeCheckHook', 'run_config_differences'
]
