"""The video provider: Replicate's create / get / cancel behind the `Provider` port, its status
mapping, progress parsing and error translation.

May import: shared.core. The `replicate` client is imported lazily, when the adapter is built.
"""
