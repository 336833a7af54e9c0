"""Output quality: checks of each translation and the ladder of remedies.

``checks`` judges one translation (loops, runaway generation, wrong script,
copies, implausible length); ``ladder`` decides what a batch commits when a
translation fails (decode again with a repetition guard, split, accept with
a flag); ``scripts`` tells which writing system letters are in.
"""
