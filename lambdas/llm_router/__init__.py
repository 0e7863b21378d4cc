"""The routing core shared by every router Lambda, the local server and the scripts."""
