"""Triton python-backend model ``stego_embed`` (contract: ``config.pbtxt``).

The body is :mod:`subtone.stego.triton_model`, shared with ``stego_extract``. The stub's
Python must have the repository root (or the installed ``subtone`` package), numpy and numba
on its path: ``server/standalone/tritonserver.py`` prepares that for the bundled server; a
deployment on the stock Triton image installs the ``subtone`` wheel (see
``packaging/docker/triton.Dockerfile``). No fallback: without them the model fails to load.
"""

import triton_python_backend_utils as pb_utils

from subtone.stego.triton_model import model_class

TritonPythonModel = model_class(pb_utils, "embed")
