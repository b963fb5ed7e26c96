"""Tools for tests, the demo and the benchmarks: known signals, their checkers, a private jackd.

Nothing in the daemons imports from here.
"""
