"""Pictures and plot data for people: cutout PNGs and light curves. Pure functions of
alert contents; no Kafka, no web framework."""
