"""wmhkit: white-matter hyperintensities from 3D T1, from segmentation to cohort statistics.

Importing wmhkit is cheap and never imports torch; heavy parts load on first use.
"""

from __future__ import annotations

import logging

from wmhkit._version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())


def segment(img, **kwargs):
    """Segment white-matter hyperintensities in a 3D T1; see :func:`wmhkit.segmentation.segment`."""
    from wmhkit.segmentation import segment as _segment

    return _segment(img, **kwargs)


__all__ = ["__version__", "segment"]
