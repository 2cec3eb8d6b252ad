"""Where predictions run: ``local`` (this process, :mod:`ppinfer.predict`) or ``ray`` (Ray Data,
:mod:`ppinfer.runners.ray_runner`; needs ``pip install 'ppinfer[ray]'``).

Both give the same results in the same order; Ray is imported only when asked for.
"""

RUNNERS = ("local", "ray")
