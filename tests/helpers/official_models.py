"""nlnet's models of the official configs at a test width, for the converter tests."""
import os.path as osp

from mmengine.config import Config

from nlnet.converters import build_recognizer

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
                      'recognition', 'official')
WIDTH, NUM_CLASSES = 4, 5


def tiny_model(config):
    """The config's model with WIDTH channels per group instead of 64 (every other rule
    kept) and NUM_CLASSES classes."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
    cfg.model.backbone.base_channels = WIDTH
    cfg.model.cls_head.in_channels = 32 * WIDTH
    cfg.model.cls_head.num_classes = NUM_CLASSES
    return build_recognizer(cfg)
