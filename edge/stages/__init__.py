"""Small single-job stages of the reconstruction pipeline (see ``edge.pipeline``)."""
