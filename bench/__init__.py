"""The wardbulk benchmark suite: ``python -m bench`` (see bench/README.md).

Each case runs wardbulk as whole processes beside the raw limit of the same work measured in the same
run, on data generated from a fixed seed.
"""
