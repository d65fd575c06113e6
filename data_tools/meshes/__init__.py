"""Meshes in the object frame: the mesh type and primitives, file import, procedural cars and chairs."""
