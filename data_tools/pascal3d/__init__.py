"""PASCAL3D+ (and ObjectNet3D): .mat reading, the standard protocol, crops into a grouped dataset, and a miniature tree for tests and benchmarks."""
