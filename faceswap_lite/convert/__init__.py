"""Convert: the trained face put back into photos and videos, blended, smoothed and marked.

``pipeline`` runs it (sources and detection from extract; ``plan_convert`` then ``run_convert``),
``model`` loads the run's model and its crop geometry, ``workers`` finds faces in the detector
processes, ``blend`` masks, colour-matches and pastes, ``smooth`` steadies landmarks over video
frames, ``video`` reads and writes video with PyAV, ``mark`` tags every output as synthetic.

Nothing is imported here, so a detector worker (``workers``) starts without torch.
"""
