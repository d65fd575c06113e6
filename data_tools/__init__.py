"""data_tools, the ground floor: geometry, the grouped dataset format, the group sampler, the one
atomic writer and worker pool at the root; meshes/, render/, pascal3d/ and image/ by job."""
