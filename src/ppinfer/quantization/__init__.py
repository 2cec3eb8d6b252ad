"""``ppinfer quantize``: post-training int8 for one engine, with that engine's own tool,
verified against fp32 on held-out images.

- :mod:`~ppinfer.quantization.quantize`: the steps, and the result (``quantize_model``)
- :mod:`~ppinfer.quantization.calibration`: images -> calibration and held-out shares,
  preprocessed as ``predict`` does
- :mod:`~ppinfer.quantization.verify`: int8 against fp32 (top-1 agreement, largest score
  difference)
- :mod:`~ppinfer.quantization.card`: the record in ``inference.yml``
- one module per tool: :mod:`~ppinfer.quantization.paddle_ptq` (analysis),
  :mod:`~ppinfer.quantization.openvino_nncf` (openvino),
  :mod:`~ppinfer.quantization.onnxruntime_static` (onnxruntime)

Importing this package imports none of the tools (nor Paddle): each is imported when used.
"""
