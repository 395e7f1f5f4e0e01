"""Loose-fastener detection from accelerometer and DAS hammer-test spectra (paper 001).

Modules, one job each:

- ``simulate``: finite-element rail on discrete spring-damper fastener supports, hammer tests,
  accelerometer and DAS responses for the paper's six conditions and any site.
- ``hammer_io``: the hammer-test data set as one HDF5 file (``accel``, ``das``, ``ffi``, ``condition``, ``fs``).
- ``spectra``: the model input, the magnitude spectrum of the first 0.2 s after the impact.
- ``model``: the CNN+Transformer regressor of the FFI; ``transfer``: cross-modal pre-training.
- ``lime``: segment-LIME over frequency bands; ``metrics``: MSE, accuracy, macro P/R/F1.
- ``dasio``, ``monitor``, ``stream``: real DAS files through DASCore and the streaming monitor.
"""
