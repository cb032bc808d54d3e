"""The core: names, lineage, times, windows, chunks, plugins and their registry, scheduling.

Nothing here touches storage; every other layer builds on it.
"""
