"""Every architecture srlab ships, one file each; ``registry`` lists them by name."""
