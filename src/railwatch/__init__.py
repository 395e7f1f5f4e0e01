"""railwatch: railway track monitoring from cameras and optical fibre.

Modules, one per published method:

- ``railwatch.intrusion``: track geometry from rail masks, lateral position and
  monocular ranging of objects, and the graded intrusion risk (levels I-V).

Example:
    >>> from railwatch.intrusion import assess_risk
    >>> a = assess_risk(offset_mm=300.0, distance_m=30.0, object_type="person", speed_mps=2.0)
    >>> a.level_names()[0]
    'II'
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("railwatch")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
