"""Training configs from PaddleClas and PaddleX (Apache-2.0), as their users export with them.

The paddleclas wheel the reference tests fetch holds PaddleClas's model code but not its
``ppcls/configs``, so the configs of issue 20's table are quoted here from the repositories:
PaddleClas's ``ppcls/configs/PULC/...`` and ``ppcls/configs/ImageNet/Distillation/...`` and
PaddleX's ``paddlex/repo_apis/PaddleClas_api/configs/...``. Every key the export reads
(``Global``, ``Arch``, ``Infer``) is verbatim; the ``DataLoader`` sections, which an export never
reads, are left out to keep this file short, and the training sections kept show that keys an
export does not need are passed over.
"""

from __future__ import annotations

# ppcls/configs/PULC/textline_orientation/PPLCNet_x1_0.yaml
PULC_TEXTLINE_ORIENTATION = """\
# global configs
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: ./output/
  device: gpu
  save_interval: 1
  eval_during_train: True
  start_eval_epoch: 18
  eval_interval: 1
  epochs: 20
  print_batch_step: 10
  use_visualdl: False
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

# loss function config for traing/eval process
Loss:
  Train:
    - CELoss:
        weight: 1.0
  Eval:
    - CELoss:
        weight: 1.0

Optimizer:
  name: Momentum
  momentum: 0.9
  lr:
    name: Cosine
    learning_rate: 0.8
    warmup_epoch: 5
  regularizer:
    name: 'L2'
    coeff: 0.00004

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

Metric:
  Train:
    - TopkAcc:
        topk: [1, 2]
  Eval:
    - TopkAcc:
        topk: [1, 2]
"""

# ppcls/configs/PULC/image_orientation/PPLCNet_x1_0.yaml
PULC_IMAGE_ORIENTATION = """\
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: ./output/
  device: gpu
  save_interval: 10
  eval_during_train: True
  eval_interval: 10
  epochs: 60
  print_batch_step: 10
  use_visualdl: False
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

Loss:
  Train:
    - CELoss:
        weight: 1.0
        epsilon: 0.1
  Eval:
    - CELoss:
        weight: 1.0

Infer:
  infer_imgs: ./test_img/
  batch_size: 1
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
    topk: 1
"""

# paddlex/repo_apis/PaddleClas_api/configs/PP-LCNet_x1_0_textline_ori.yaml, as PaddleX's
# training leaves it in its output folder: with the Global keys its train() sets
# (uniform_output_enabled, pdx_model_name).
PADDLEX_TEXTLINE_ORI = PULC_TEXTLINE_ORIENTATION.replace(
    "  use_dali: False\n",
    "  to_static: False\n  use_dali: False\n  uniform_output_enabled: True\n"
    "  pdx_model_name: PP-LCNet_x1_0_textline_ori\n",
)

# paddlex/repo_apis/PaddleClas_api/configs/PP-LCNet_x1_0_doc_ori.yaml
PADDLEX_DOC_ORI = """\
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: ./output/
  device: gpu
  save_interval: 10
  eval_during_train: True
  eval_interval: 10
  epochs: 60
  print_batch_step: 10
  use_visualdl: False
  # used for static mode and model export
  image_shape: [3, 224, 224]
  save_inference_dir: ./inference

# mixed precision
AMP:
  use_amp: False
  use_fp16_test: False
  scale_loss: 128.0
  use_dynamic_loss_scaling: True
  use_promote: False
  # O1: mixed fp16, O2: pure fp16
  level: O1

# model architecture
Arch:
  name: PPLCNet_x1_0
  pretrained: True
  class_num: 4
  use_last_conv: False

Infer:
  infer_imgs: ./test_img/
  batch_size: 1
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
    topk: 1
    class_id_map_file: ppcls/utils/PULC_label_list/text_image_orientation_label_list.txt
"""

# ppcls/configs/ImageNet/Distillation/mv3_large_x1_0_distill_mv3_small_x1_0_dml.yaml
MOBILENETV3_DML = """\
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: "./output_ssld/"
  device: "gpu"
  save_interval: 1
  eval_during_train: True
  eval_interval: 1
  epochs: 120
  print_batch_step: 10
  use_visualdl: False
  # used for static mode and model export
  image_shape: [3, 224, 224]
  save_inference_dir: "./inference"
  use_dali: True

# model architecture
Arch:
  name: "DistillationModel"
  class_num: 1000
  # if not null, its lengths should be same as models
  pretrained_list:
  # if not null, its lengths should be same as models
  freeze_params_list:
  - True
  - False
  models:
    - Teacher:
        name: MobileNetV3_large_x1_0
        pretrained: True
        use_ssld: True
        dropout_prob: null
    - Student:
        name: MobileNetV3_small_x1_0
        pretrained: False
        dropout_prob: null
  infer_model_name: "Student"

Loss:
  Train:
    - DistillationDMLLoss:
        weight: 1.0
        key: "logits"
        model_name_pairs:
        - ["Student", "Teacher"]
  Eval:
    - DistillationGTCELoss:
        weight: 1.0
        key: "logits"
        model_names: ["Student"]

Infer:
  infer_imgs: "docs/images/whl/demo.jpg"
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
    name: DistillationPostProcess
    func: Topk
    topk: 5
    class_id_map_file: "ppcls/utils/imagenet1k_label_list.txt"
"""

# ppcls/configs/ImageNet/Distillation/PPLCNet_x1_0_ssld.yaml
PPLCNET_SSLD = """\
Global:
  checkpoints: null
  pretrained_model: null
  output_dir: ./output_r50_vd_distill
  device: gpu
  save_interval: 1
  eval_during_train: True
  eval_interval: 1
  epochs: 200
  print_batch_step: 10
  use_visualdl: False
  # used for static mode and model export
  image_shape: [3, 224, 224]
  save_inference_dir: ./inference
  to_static: True

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
    topk: 5
    class_id_map_file: ppcls/utils/imagenet1k_label_list.txt
"""


def infer_transforms(config_text: str) -> list:
    """The config's ``Infer.transforms``, parsed by PyYAML itself (not by ppinfer)."""
    import yaml

    return yaml.safe_load(config_text)["Infer"]["transforms"]
