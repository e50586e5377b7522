"""Thin Pulumi dynamic-provider adapters over the engine.

The classes here are pickled by reference (module + name) into every stack's state: their
module paths and names are public API. They hold no state; each method imports the engine at
call time and opens its own libvirt connection.
"""
