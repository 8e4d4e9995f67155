"""Convert: the trained face put back into photos and videos, blended, smoothed and marked.

``pipeline`` plans and runs it (sources and detection from extract; ``plan_convert`` then
``run_convert``) and ``converter`` is its main loop on :mod:`faceswap_lite.frames`' workers;
``options`` declares the settings, ``model`` loads the run's model and its crop geometry,
``workers`` finds faces in the detector processes, ``faceindex`` takes them from a face set
instead, ``swap`` aligns, swaps and blends them, ``blend`` masks, colour-matches and pastes (its
mode tables), ``smooth`` steadies landmarks over video frames, ``video`` reads and writes video
with PyAV, ``sinks`` writes outputs whole, ``mark`` tags every output as synthetic.

Nothing is imported here, so a detector worker (``workers``) starts without torch.
"""
