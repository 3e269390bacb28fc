"""The lab: the lectures' small Internet on loopback, and its example programs."""
