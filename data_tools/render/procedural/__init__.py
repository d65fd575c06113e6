"""Procedural 2-D images drawn from a seed alone (no files): material textures and car liveries
(`textures`, `liveries`, `texture_noise`) and photo-like background scenes (`scenes`, `landscape`,
`canvas`)."""
