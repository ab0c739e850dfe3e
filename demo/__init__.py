"""What `posd demo` and the tests need and the daemon never loads: the local AWS emulator
(moto), the backend's side (a bus routed to a queue, the cloud consumer fed from it) and the
demo pipeline itself.

Nothing outside this package imports it at module level, so the production import graph
stays free of moto and of demo code (tests/test_architecture.py checks it).
"""
