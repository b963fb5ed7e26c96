"""Two clocks, one link: drift estimation and control, resampling, the automatic margin."""
