"""Measurement: figures with units, limits and samples (``figure``), the statistics that compare
them with a baseline (``compare``), the limits files (``limits``), the records a run writes
(``records``), its run folder (``runfolder``), the history of runs (``history``) and the HTML
report (``report``)."""
