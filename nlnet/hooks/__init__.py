"""nlnet's runner hooks; importing this module registers them in mmengine's HOOKS."""
from .broken_video_hook import BrokenVideoHook
from .drop_checkpoint_keys_hook import DropCheckpointKeysHook
from .rank_log_hook import RankLogHook

__all__ = ['DropCheckpointKeysHook', 'BrokenVideoHook', 'RankLogHook']
