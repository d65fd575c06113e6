"""The evaluation runner that feeds `eval`, its report figures, and the sim2real score on PASCAL3D+ crops."""
