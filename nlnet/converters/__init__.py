"""Converters of checkpoints from other code bases (the official Caffe2 release)."""
from .caffe2_blobs import (Caffe2ConversionError, blob_name_of_key, caffe2_to_model_state_dict,
                           caffe2_to_state_dict, caffe2_to_torchvision_resnet)
from .caffe2_pickle import (UnsafeCaffe2PickleError, load_caffe2_blobs,
                            read_caffe2_blobs_if_official)
from .official import (ConfigChoiceError, build_recognizer, choose_config, config_named_by,
                       configs_fitting, convert_official_imagenet_model,
                       convert_official_video_model, is_imagenet_model, official_checkpoint)

__all__ = [
    'Caffe2ConversionError', 'ConfigChoiceError', 'UnsafeCaffe2PickleError', 'blob_name_of_key',
    'build_recognizer', 'caffe2_to_model_state_dict', 'caffe2_to_state_dict',
    'caffe2_to_torchvision_resnet', 'choose_config', 'config_named_by', 'configs_fitting',
    'convert_official_imagenet_model', 'convert_official_video_model', 'is_imagenet_model',
    'load_caffe2_blobs', 'official_checkpoint', 'read_caffe2_blobs_if_official'
]
