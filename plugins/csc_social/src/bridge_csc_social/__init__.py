"""bridge adapter plugin for CSC Social."""
