"""The Paddle runtime: importing Paddle (whole, or only its C++ core for prediction), what the
installed build and this CPU can do, static-graph contexts, Paddle's log output, Ctrl-C held
while native code loads.

- :mod:`~ppinfer.runtime.paddle_import`: ``import paddle``, quietly, with one-sentence errors
- :mod:`~ppinfer.runtime.paddle_core`: Paddle Inference without ``import paddle``
- :mod:`~ppinfer.runtime.paddle_env`: versions, IR, devices, CPU flags; static-mode contexts
- :mod:`~ppinfer.runtime.quiet`: Paddle's and glog's output captured unless ``--verbose``
- :mod:`~ppinfer.runtime.interrupts`: Ctrl-C deferred around loads and atomic steps
"""
