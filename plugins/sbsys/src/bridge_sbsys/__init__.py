"""bridge adapter plugin for SB-SYS."""
