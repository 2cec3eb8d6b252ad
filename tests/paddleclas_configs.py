"""Training configs of PaddleClas 2.6 and PaddleX 3, as the tests' inputs.

The ``Global``, ``Arch`` and ``Infer`` sections are transcribed from the files named (the
``paddleclas`` wheel ships no configs); the training-only sections (Loss, Optimizer, DataLoader,
Metric) are cut to a line each, which ppinfer must pass over as PaddleClas's export does.
"""

from __future__ import annotations

_TRAINING_SECTIONS = """
Loss:
  Train:
    - CELoss:
        weight: 1.0
Optimizer:
  name: Momentum
  momentum: 0.9
DataLoader:
  Train:
    dataset:
      name: ImageNetDataset
Metric:
  Eval:
    - TopkAcc:
        topk: [1, 2]
"""

_IMAGENET_INFER = """
Infer:
  infer_imgs: docs/images/inference_deployment/whl_demo.jpg
  batch_size: 10
  transforms:
    - DecodeImage:
        to_rgb: True
        channel_first: False
    - ResizeImage:
        resize_short: 256
    - CropImage:
        size: 224
    - NormalizeImage:
        scale: 1.0/255.0
        mean: [0.485, 0.456, 0.406]
        std: [0.229, 0.224, 0.225]
        order: ''
    - ToCHWImage:
  PostProcess:
    name: Topk
    topk: {topk}
    class_id_map_file: {labels}
"""

_TEXTLINE_INFER = """
Infer:
  infer_imgs: deploy/images/PULC/textline_orientation/textline_orientation_test_0_0.png
  batch_size: 10
  transforms:
    - DecodeImage:
        to_rgb: True
        channel_first: False
    - ResizeImage:
        size: [160, 80]
    - NormalizeImage:
        scale: 1.0/255.0
        mean: [0.485, 0.456, 0.406]
        std: [0.229, 0.224, 0.225]
        order: ''
    - ToCHWImage:
  PostProcess:
    name: Topk
    topk: 1
    class_id_map_file: ppcls/utils/PULC_label_list/textline_orientation_label_list.txt
"""

# ppcls/configs/PULC/textline_orientation/PPLCNet_x1_0.yaml
PULC_TEXTLINE_ORIENTATION = """
# global configs
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: ./output/
  device: gpu
  epochs: 20
  # used for static mode and model export
  image_shape: [3, 80, 160]
  save_inference_dir: ./inference
  use_dali: False

# model architecture
Arch:
  name: PPLCNet_x1_0
  class_num: 2
  pretrained: True
  use_ssld: True
  stride_list: [2, [2, 1], [2, 1], [2, 1], [2, 1]]
""" + _TRAINING_SECTIONS + _TEXTLINE_INFER

# paddlex/repo_apis/PaddleClas_api/configs/PP-LCNet_x1_0_textline_ori.yaml, with the
# Global.model_name PaddleX's trainer adds to the config.yaml of its output folder
PADDLEX_TEXTLINE_ORI = """
Global:
  model_name: PP-LCNet_x1_0_textline_ori
  checkpoints: null
  pretrained_model: null
  output_dir: ./output/
  device: gpu
  start_eval_epoch: 1
  epochs: 20
  # used for static mode and model export
  image_shape: [3, 80, 160]
  save_inference_dir: ./inference
  # training model under @to_static
  to_static: False
  use_dali: False

# model architecture
Arch:
  name: PPLCNet_x1_0
  class_num: 2
  pretrained: True
  use_ssld: True
  stride_list: [2, [2, 1], [2, 1], [2, 1], [2, 1]]
""" + _TRAINING_SECTIONS + _TEXTLINE_INFER

# ppcls/configs/PULC/image_orientation/PPLCNet_x1_0.yaml
PULC_IMAGE_ORIENTATION = """
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: ./output/
  device: gpu
  epochs: 60
  # used for static mode and model export
  image_shape: [3, 224, 224]
  save_inference_dir: ./inference

# model architecture
Arch:
  name: PPLCNet_x1_0
  pretrained: True
  use_ssld: True
  class_num: 4
  use_last_conv: False
""" + _TRAINING_SECTIONS + _IMAGENET_INFER.format(topk=1, labels="null")

# paddlex/repo_apis/PaddleClas_api/configs/PP-LCNet_x1_0_doc_ori.yaml (+ Global.model_name)
PADDLEX_DOC_ORI = """
Global:
  model_name: PP-LCNet_x1_0_doc_ori
  checkpoints: null
  pretrained_model: null
  output_dir: ./output/
  device: gpu
  epochs: 60
  # used for static mode and model export
  image_shape: [3, 224, 224]
  save_inference_dir: ./inference

# mixed precision
AMP:
  use_amp: False
  level: O1

# model architecture
Arch:
  name: PPLCNet_x1_0
  pretrained: True
  class_num: 4
  use_last_conv: False
""" + _TRAINING_SECTIONS + _IMAGENET_INFER.format(
    topk=1, labels="ppcls/utils/PULC_label_list/text_image_orientation_label_list.txt")

# ppcls/configs/ImageNet/Distillation/mv3_large_x1_0_distill_mv3_small_x1_0.yaml
MV3_DISTILLATION = """
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: "./output/"
  device: "gpu"
  epochs: 120
  # used for static mode and model export
  image_shape: [3, 224, 224]
  save_inference_dir: "./inference"
  use_dali: false

# model architecture
Arch:
  name: "DistillationModel"
  class_num: &class_num 1000
  # if not null, its lengths should be same as models
  pretrained_list:
  # if not null, its lengths should be same as models
  freeze_params_list:
  - True
  - False
  models:
    - Teacher:
        name: MobileNetV3_large_x1_0
        class_num: *class_num
        pretrained: True
        use_ssld: True
        dropout_prob: null
    - Student:
        name: MobileNetV3_small_x1_0
        class_num: *class_num
        pretrained: False
        dropout_prob: null

  infer_model_name: "Student"
""" + _TRAINING_SECTIONS + _IMAGENET_INFER.format(
    topk=5, labels='"ppcls/utils/imagenet1k_label_list.txt"')

# ppcls/configs/ImageNet/Distillation/PPLCNet_x1_0_ssld.yaml
PPLCNET_SSLD = """
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: ./output_r50_vd_distill
  device: gpu
  epochs: 200
  # used for static mode and model export
  image_shape: [3, 224, 224]
  save_inference_dir: ./inference
  to_static: True

AMP:
  use_amp: True
  level: O1

# model architecture
Arch:
  name: "DistillationModel"
  class_num: &class_num 1000
  # if not null, its lengths should be same as models
  pretrained_list:
  # if not null, its lengths should be same as models
  freeze_params_list:
  - True
  - False
  infer_model_name: "Student"
  models:
    - Teacher:
        name: ResNet50_vd
        class_num: *class_num
        pretrained: True
        use_ssld: True
    - Student:
        name: PPLCNet_x1_0
        class_num: *class_num
        pretrained: False
        dropout_prob: 0.0
""" + _TRAINING_SECTIONS + _IMAGENET_INFER.format(
    topk=5, labels="ppcls/utils/imagenet1k_label_list.txt")
