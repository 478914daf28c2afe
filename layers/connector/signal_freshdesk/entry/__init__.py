"""What the two Lambda handlers call: take this container's runtime, set the deadline, run the core."""
