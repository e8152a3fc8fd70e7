"""The figures of the book, by kind: :mod:`.layout` (style, page-sized panels, legends and
point labels that never cover data), :mod:`.curves` (accuracy and CKA against the
fraction of neurons), :mod:`.bars` (bar and strip charts) and :mod:`.points` (scatter
plots and the per-class heatmap). :mod:`diffred.plots` is the public face: chapters call
``plots.<figure>(...)``."""
